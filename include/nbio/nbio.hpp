// Public. The umbrella header: everything a hello world needs.
#pragma once

#include "nbio/core/address.hpp"
#include "nbio/core/error.hpp"
#include "nbio/engine/config.hpp"
#include "nbio/engine/conn.hpp"
#include "nbio/engine/conn_handle.hpp"
#include "nbio/engine/dialer.hpp"
#include "nbio/engine/engine.hpp"
#include "nbio/engine/listener.hpp"
#include "nbio/engine/loop.hpp"
#include "nbio/engine/timer_wheel.hpp"
#include "nbio/engine/transport.hpp"
#include "nbio/engine/udp.hpp"
#include "nbio/engine/workers.hpp"
#include "nbio/tls/context.hpp"
#include "nbio/tls/error.hpp"
