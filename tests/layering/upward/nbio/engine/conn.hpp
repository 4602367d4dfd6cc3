// Fixture for layering_check_rejects_engine_header_including_http: an engine header that reaches
// up into the HTTP layer. check_layering.cmake must reject it.
#pragma once

#include "nbio/http/server.hpp"
