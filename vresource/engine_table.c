/* The engine's table.c, built into package vresource (engine.go). */
#include "engine_strict.h"
#include "table.c"
