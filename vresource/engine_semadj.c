/* The engine's semadj.c, built into package vresource (engine.go). */
#include "engine_strict.h"
#include "semadj.c"
