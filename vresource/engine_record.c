/* The engine's record.c, built into package vresource (engine.go). */
#include "engine_strict.h"
#include "record.c"
