// Fixture: the upper-layer header that the engine fixture wrongly includes.
#pragma once
