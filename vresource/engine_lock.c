/* The engine's lock.c, built into package vresource (engine.go). */
#include "engine_strict.h"
#include "lock.c"
