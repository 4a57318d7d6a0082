// Private to CGatehouseLua: Lua 5.4 pattern matching (string.find/match/gmatch/gsub) under a
// step budget. See gh_pattern.c for why it exists and what a step is.
#ifndef GH_PATTERN_H
#define GH_PATTERN_H

#include <stddef.h>

#include <lauxlib.h>
#include <lua.h>

/// Most matching steps one call of find/match/gsub, or one call of a gmatch iterator, may
/// take before it raises "pattern too costly". 0 = unlimited. Default 10,000,000.
/// Read once at the start of each call; set it before any VM runs (it is not atomic).
extern size_t gh_pattern_step_limit;

// Drop-in replacements for the fields of the `string` table: same arguments, same results,
// same errors as Lua 5.4.4's, plus the step budget. They also work as methods, ("x"):find(...).
int gh_str_find(lua_State *L);
int gh_str_match(lua_State *L);
int gh_str_gmatch(lua_State *L);
int gh_str_gsub(lua_State *L);

#endif
