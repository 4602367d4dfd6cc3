// Fixture for layering_check_rejects_public_header_including_src: a public header that includes
// a private implementation header. check_layering.cmake must reject it.
#pragma once

#include "engine/write_queue.hpp"
