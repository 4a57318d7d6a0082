// The sandboxed standard library: what policies may call, and wrappers around every standard
// function that catches errors (pcall, xpcall, load, coroutine.resume/wrap/close), so that a
// budget error always ends the whole invocation (see gh_budget.c).
#include "gh_internal.h"
#include "gh_pattern.h"

#include <lualib.h>
#include <string.h>

// MARK: Protected calls

static int gh_finish_pcall(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    // A budget error must end the invocation, not be caught by the policy.
    if (gh_budget_exhausted(L)) return gh_rethrow_budget(L);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

static int gh_lib_pcall(lua_State *L) {
  if (gh_budget_exhausted(L)) return gh_raise_budget(L, 1);
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, gh_finish_pcall);
  return gh_finish_pcall(L, status, 0);
}

// xpcall's message handler runs where the error was raised: for a budget error that is inside
// the count hook, where hooks are off and a looping handler would never be stopped. So a
// policy's handler runs only while the budget holds; after that the error passes through.
static int gh_guarded_handler(lua_State *L) {
  if (gh_budget_exhausted(L)) {
    lua_settop(L, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int gh_lib_xpcall(lua_State *L) {
  if (gh_budget_exhausted(L)) return gh_raise_budget(L, 1);
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, gh_guarded_handler, 1);
  lua_replace(L, 2);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, gh_finish_pcall);
  return gh_finish_pcall(L, status, 2);
}

static int gh_lib_load(lua_State *L) {
  if (gh_budget_exhausted(L)) return gh_raise_budget(L, 1);
  // Text chunks only: binary chunks can break the VM's invariants. Without an explicit
  // environment the chunk gets nil, never the shared globals (the prelude gives each module a
  // `load` that defaults to the module's own environment).
  lua_settop(L, 4);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 4, LUA_MULTRET);
  // A reader function's errors are caught by load and returned: a budget error is rethrown.
  if (gh_budget_exhausted(L)) return gh_rethrow_budget(L);
  return lua_gettop(L);
}

// MARK: Coroutines

// A coroutine stopped by a budget may have died inside the count hook, where Lua leaves its
// hooks off; closing it would run its pending __close handlers with no budget at all. Such
// threads are marked by the hook firing after every instruction (gh_raise_budget) and are
// never closed: the collector frees them.
static int gh_may_close(lua_State *co) { return lua_gethookcount(co) != 1; }

static int gh_lib_coresume(lua_State *L) {
  if (gh_budget_exhausted(L)) return gh_raise_budget(L, 1);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  if (!lua_toboolean(L, 1) && gh_budget_exhausted(L)) {
    lua_settop(L, 2);
    return gh_rethrow_budget(L);
  }
  return lua_gettop(L);
}

static int gh_lib_coclose(lua_State *L) {
  if (gh_budget_exhausted(L)) return gh_raise_budget(L, 1);
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  int status = lua_status(co);
  if (status != LUA_OK && status != LUA_YIELD && !gh_may_close(co)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "the coroutine was stopped by a budget");
    return 2;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  if (!lua_toboolean(L, 1) && gh_budget_exhausted(L)) {
    lua_settop(L, 2);
    return gh_rethrow_budget(L);
  }
  return lua_gettop(L);
}

static int gh_close_thread(lua_State *co, lua_State *from) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  return lua_closethread(co, from);
#else
  (void)from;
  return lua_resetthread(co);
#endif
}

// coroutine.wrap's function, as Lua's own but for budget errors (rethrown, thread not closed).
static int gh_auxwrap(lua_State *L) {
  if (gh_budget_exhausted(L)) return gh_raise_budget(L, 1);
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int narg = lua_gettop(L);
  if (!lua_checkstack(co, narg)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, narg);
  int nres = 0;
  int status = lua_resume(co, L, narg, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      return luaL_error(L, "too many results to resume");
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1); // the error object
  if (gh_budget_exhausted(L)) return gh_rethrow_budget(L);
  int stat = lua_status(co);
  if (stat != LUA_OK && stat != LUA_YIELD && gh_may_close(co)) {
    // Close its to-be-closed variables, under the running invocation's budget.
    lua_pop(L, 1);
    stat = gh_close_thread(co, L);
    lua_xmove(co, L, 1);
    if (gh_budget_exhausted(L)) return gh_rethrow_budget(L);
  }
  if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

static int gh_lib_cowrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, gh_auxwrap, 1);
  return 1;
}

// MARK: Other replacements

static int gh_lib_collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage('%s') is not available to policies; only 'count' is", opt);
  lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) + (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
  return 1;
}

static int gh_lib_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    int t = lua_rawget(L, 2);
    lua_pop(L, 1);
    // Finalizers would run at arbitrary points, outside any budget or request.
    if (t != LUA_TNIL) return luaL_error(L, "setmetatable: __gc metamethods are not allowed");
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int gh_lib_rawset(lua_State *L) {
  // Tables marked read-only (the shared libraries, the globals, module views) cannot be
  // changed around their metamethods either.
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getmetatable(L, 1)) {
    lua_pushliteral(L, "__readonly");
    int readonly = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    if (readonly) return luaL_error(L, "rawset: this table is read-only (it is shared by every policy)");
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static void gh_wrap_global(lua_State *L, const char *name, lua_CFunction fn) {
  lua_getglobal(L, name);
  lua_pushcclosure(L, fn, 1);
  lua_setglobal(L, name);
}

static void gh_wrap_field(lua_State *L, int table, const char *name, lua_CFunction fn) {
  lua_getfield(L, table, name);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, table, name);
}

int gh_open_sandbox(lua_State *L) {
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
  luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
  lua_settop(L, 0);

  // No file system, no bytecode, no unbounded collector control.
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");
  gh_wrap_global(L, "load", gh_lib_load);
  lua_pushcfunction(L, gh_lib_collectgarbage);
  lua_setglobal(L, "collectgarbage");
  lua_pushcfunction(L, gh_lib_pcall);
  lua_setglobal(L, "pcall");
  lua_pushcfunction(L, gh_lib_xpcall);
  lua_setglobal(L, "xpcall");
  gh_wrap_global(L, "setmetatable", gh_lib_setmetatable);
  gh_wrap_global(L, "rawset", gh_lib_rawset);

  // The coroutine functions that catch errors rethrow budget errors.
  lua_getglobal(L, LUA_COLIBNAME);
  int co = lua_gettop(L);
  gh_wrap_field(L, co, "resume", gh_lib_coresume);
  gh_wrap_field(L, co, "close", gh_lib_coclose);
  lua_pushcfunction(L, gh_lib_cowrap);
  lua_setfield(L, co, "wrap");
  lua_pop(L, 1);

  // getmetatable("") would hand out the real string table (its __index): hide it.
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  // string.dump is reachable as ("").dump through the string metatable: remove it from the
  // real table, not only the global. The pattern functions are replaced in the real table too.
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  // Lua's own matcher backtracks without bound and hooks cannot interrupt C code: ours counts
  // its steps (gh_pattern.c), so every call is bounded whatever the pattern and the subject.
  static const struct { const char *name; lua_CFunction fn; } patterns[] = {
    {"find", gh_str_find}, {"match", gh_str_match}, {"gmatch", gh_str_gmatch}, {"gsub", gh_str_gsub}, {NULL, NULL},
  };
  for (int i = 0; patterns[i].name != NULL; i++) {
    lua_pushcfunction(L, patterns[i].fn);
    lua_setfield(L, -2, patterns[i].name);
  }
  lua_pop(L, 1);

  // os: only the clock and calendar functions.
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, LUA_OSLIBNAME);
  lua_createtable(L, 0, 3);
  static const char *const os_keep[] = {"time", "clock", "date", NULL};
  for (int i = 0; os_keep[i] != NULL; i++) {
    lua_getfield(L, -2, os_keep[i]);
    lua_setfield(L, -2, os_keep[i]);
  }
  lua_setglobal(L, LUA_OSLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -3, LUA_OSLIBNAME); // forget the full os library
  lua_settop(L, 0);
  return 0;
}
