// The Lua boundary. Everything that can raise (longjmp) or yield happens in this file, in C
// frames only. See include/gh_lua.h and docs/architecture.md ("The Lua boundary").
#include "gh_lua.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// How many VM instructions run between two budget checks. The count hook costs the same
// whatever the interval (it puts the VM in trap mode), so the interval only bounds overshoot.
#define GH_HOOK_INTERVAL 1000

struct gh_vm {
  lua_State *L;
  size_t memory_used;
  size_t memory_limit;
  // 1 while Swift (or C on Swift's behalf) is manipulating the state: the allocator never
  // refuses then, so a push from Swift cannot raise a memory error across a Swift frame.
  int host_active;
  uint64_t instruction_limit;
  uint64_t instructions_used;
  uint64_t deadline_ns; // absolute CLOCK_MONOTONIC time, 0 = none
  int budget_hit;
  gh_dispatch_fn dispatch;
  void *dispatch_context;
};

static uint64_t gh_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static gh_vm *gh_vm_of(lua_State *L) { return *(gh_vm **)lua_getextraspace(L); }

// MARK: Allocator

static void *gh_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  gh_vm *vm = (gh_vm *)ud;
  size_t old = ptr ? osize : 0; // for a new block, osize is a type tag, not a size
  if (nsize == 0) {
    free(ptr);
    vm->memory_used -= old;
    return NULL;
  }
  if (nsize > old && vm->memory_limit != 0 && !vm->host_active &&
      vm->memory_used + (nsize - old) > vm->memory_limit) {
    vm->budget_hit = GH_BUDGET_MEMORY;
    return NULL;
  }
  void *block = realloc(ptr, nsize);
  if (block == NULL) {
    // Refusing here would make Lua raise a memory error, and while the host is using the
    // state that longjmp would cross a Swift frame (a host function called through the
    // trampoline). The machine itself is out of memory: stop, and say why.
    if (vm->host_active) {
      fprintf(stderr, "gatehouse: out of memory while the host was using a Lua state\n");
      abort();
    }
    return NULL;
  }
  vm->memory_used = vm->memory_used - old + nsize;
  return block;
}

static int gh_panic(lua_State *L) {
  // An error outside any protected call: a bug in Gatehouse, never a policy's doing. Lua would
  // abort anyway; say why first.
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "gatehouse: unprotected Lua error: %s\n", msg ? msg : "(not a string)");
  return 0;
}

// MARK: Budgets

static void gh_count_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  gh_vm *vm = gh_vm_of(L);
  vm->instructions_used += GH_HOOK_INTERVAL;
  if (vm->budget_hit == GH_BUDGET_NONE) {
    if (vm->instruction_limit != 0 && vm->instructions_used > vm->instruction_limit) {
      vm->budget_hit = GH_BUDGET_INSTRUCTIONS;
    } else if (vm->deadline_ns != 0 && gh_now_ns() > vm->deadline_ns) {
      vm->budget_hit = GH_BUDGET_DEADLINE;
    }
  }
  // Sticky: once a budget is hit every later check raises again, so `pcall` in a loop cannot
  // swallow it. Inside a hook, level 0 is the Lua function that was running: name its line.
  const char *what = NULL;
  switch (vm->budget_hit) {
  case GH_BUDGET_INSTRUCTIONS: what = "instruction budget exceeded"; break;
  case GH_BUDGET_DEADLINE: what = "time budget exceeded"; break;
  case GH_BUDGET_MEMORY: what = "memory budget exceeded"; break;
  default: return;
  }
  luaL_where(L, 0);
  lua_pushstring(L, what);
  lua_concat(L, 2);
  lua_error(L);
}

void gh_vm_arm_budget(gh_vm *vm, uint64_t instructions, uint64_t deadline_ns) {
  vm->instruction_limit = instructions;
  vm->instructions_used = 0;
  vm->deadline_ns = deadline_ns ? gh_now_ns() + deadline_ns : 0;
  vm->budget_hit = GH_BUDGET_NONE;
}

int gh_vm_budget_hit(gh_vm *vm) { return vm->budget_hit; }

// MARK: Sandboxed library replacements

static int gh_finish_pcall(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    // A budget error must end the invocation, not be caught by the policy.
    if (gh_vm_of(L)->budget_hit != GH_BUDGET_NONE) return lua_error(L);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

static int gh_lib_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, gh_finish_pcall);
  return gh_finish_pcall(L, status, 0);
}

static int gh_lib_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, gh_finish_pcall);
  return gh_finish_pcall(L, status, 2);
}

static int gh_lib_load(lua_State *L) {
  // Text chunks only: binary chunks can break the VM's invariants.
  lua_settop(L, 4);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 4, LUA_MULTRET);
  return lua_gettop(L);
}

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

// Lua's pattern matcher backtracks, and hooks cannot interrupt a C function: a pattern with
// several '.' wildcards under repetition ('.-', '.*', '.+') on a long subject can run for
// minutes ('.-.-.-b' on 300 bytes: seconds). Worst-case work grows like n^(k+1) for k such
// repetitions; refuse calls above this bound before they start.
#define GH_PATTERN_WORK_LIMIT 3e9

static int gh_wildcard_repetitions(const char *p, size_t len) {
  int count = 0, in_set = 0;
  for (size_t i = 0; i < len; i++) {
    char c = p[i];
    if (c == '%') { i++; continue; }          // escaped character or class
    if (in_set) { if (c == ']') in_set = 0; continue; }
    if (c == '[') { in_set = 1; if (i + 1 < len && p[i + 1] == '^') i++; if (i + 1 < len && p[i + 1] == ']') i++; continue; }
    if (c == '.' && i + 1 < len && (p[i + 1] == '-' || p[i + 1] == '*' || p[i + 1] == '+')) { count++; i++; }
  }
  return count;
}

static int gh_lib_pattern(lua_State *L) {
  size_t subject_len, pattern_len;
  luaL_checklstring(L, 1, &subject_len);
  const char *pattern = luaL_checklstring(L, 2, &pattern_len);
  int is_find = (int)lua_tointeger(L, lua_upvalueindex(2));
  if (!(is_find && lua_toboolean(L, 4))) { // string.find(s, p, init, true) is a plain search
    int k = gh_wildcard_repetitions(pattern, pattern_len);
    if (k > 0) {
      double work = 1.0, n = (double)subject_len + 1.0;
      for (int i = 0; i <= k && work <= GH_PATTERN_WORK_LIMIT; i++) work *= n;
      if (work > GH_PATTERN_WORK_LIMIT)
        return luaL_error(L, "pattern too costly: %d wildcard repetitions ('.-', '.*', '.+') on a %d-byte string "
                             "(shorten the string, make the pattern more specific, or use json.decode)", k, (int)subject_len);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static void gh_wrap_global(lua_State *L, const char *name, lua_CFunction fn) {
  lua_getglobal(L, name);
  lua_pushcclosure(L, fn, 1);
  lua_setglobal(L, name);
}

static int gh_open_sandbox(lua_State *L) {
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

  // getmetatable("") would hand out the real string table (its __index): hide it.
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  // string.dump is reachable as ("").dump through the string metatable: remove it from the
  // real table, not only the global. The pattern functions are wrapped in the real table too.
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  static const char *const pattern_functions[] = {"find", "match", "gmatch", "gsub", NULL};
  for (int i = 0; pattern_functions[i] != NULL; i++) {
    lua_getfield(L, -1, pattern_functions[i]);
    lua_pushinteger(L, i == 0); // upvalue 2: is this find (which has a plain mode)?
    lua_pushcclosure(L, gh_lib_pattern, 2);
    lua_setfield(L, -2, pattern_functions[i]);
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

// MARK: VM lifecycle

gh_vm *gh_vm_new(size_t memory_limit) {
  gh_vm *vm = (gh_vm *)calloc(1, sizeof(gh_vm));
  if (vm == NULL) return NULL;
  vm->host_active = 1;
  vm->memory_limit = memory_limit;
  lua_State *L = lua_newstate(gh_alloc, vm);
  if (L == NULL) {
    free(vm);
    return NULL;
  }
  vm->L = L;
  *(gh_vm **)lua_getextraspace(L) = vm; // threads created later copy this slot
  lua_atpanic(L, gh_panic);
  lua_pushcfunction(L, gh_open_sandbox);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_close(L);
    free(vm);
    return NULL;
  }
  // Threads inherit the hook from the thread that creates them.
  lua_sethook(L, gh_count_hook, LUA_MASKCOUNT, GH_HOOK_INTERVAL);
  return vm;
}

void gh_vm_close(gh_vm *vm) {
  if (vm == NULL) return;
  lua_close(vm->L);
  free(vm);
}

gh_thread *gh_vm_main(gh_vm *vm) { return vm->L; }

void gh_vm_set_dispatch(gh_vm *vm, gh_dispatch_fn fn, void *context) {
  vm->dispatch = fn;
  vm->dispatch_context = context;
}

void gh_vm_collect(gh_vm *vm) { lua_gc(vm->L, LUA_GCCOLLECT, 0); }

// MARK: Protected entry points

static int gh_message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      msg = lua_tostring(L, -1);
    } else {
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int gh_load(lua_State *L, const char *source, size_t length, const char *chunkname) {
  return luaL_loadbufferx(L, source, length, chunkname, "t");
}

int gh_pcall(lua_State *L, int nargs, int nresults) {
  gh_vm *vm = gh_vm_of(L);
  int base = lua_gettop(L) - nargs; // the function's slot
  lua_pushcfunction(L, gh_message_handler);
  lua_insert(L, base);
  int saved = vm->host_active;
  vm->host_active = 0;
  int status = lua_pcall(L, nargs, nresults, base);
  vm->host_active = saved;
  lua_remove(L, base);
  return status;
}

static int gh_traceback_of(lua_State *L) {
  lua_State *co = (lua_State *)lua_touserdata(L, 1);
  const char *msg = lua_tostring(co, -1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
  luaL_traceback(L, co, msg, 0);
  return 1;
}

int gh_resume(lua_State *co, lua_State *from, int nargs, int *nresults) {
  gh_vm *vm = gh_vm_of(co);
  int saved = vm->host_active;
  vm->host_active = 0;
  int status = lua_resume(co, from, nargs, nresults);
  vm->host_active = saved;
  if (status != LUA_OK && status != LUA_YIELD) {
    // The coroutine's stack is still intact: take its traceback now, before the caller resets it.
    lua_pushcfunction(from, gh_traceback_of);
    lua_pushlightuserdata(from, co);
    if (lua_pcall(from, 1, 1, 0) == LUA_OK) {
      lua_xmove(from, co, 1);
    } else {
      lua_pop(from, 1);
    }
  }
  return status;
}

gh_thread *gh_newthread(lua_State *L, int *ref) {
  lua_State *co = lua_newthread(L);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return co;
}

int gh_resetthread(lua_State *co, lua_State *from) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  return lua_closethread(co, from);
#else
  (void)from;
  return lua_resetthread(co);
#endif
}

int gh_status(lua_State *L) { return lua_status(L); }

// MARK: Host functions

static int gh_trampoline(lua_State *L) {
  gh_vm *vm = gh_vm_of(L);
  int id = (int)lua_tointeger(L, lua_upvalueindex(1));
  int saved = vm->host_active;
  vm->host_active = 1;
  int result = vm->dispatch(L, id, vm->dispatch_context);
  vm->host_active = saved;
  // The Swift frame has returned: raising or yielding is safe from here on.
  if (result >= 0) return result;
  if (result == GH_HOST_YIELD) {
    if (!lua_isyieldable(L)) {
      lua_pushliteral(L, "cannot wait for I/O here: the call is inside a C function (such as a "
                         "table.sort comparator or a string.gsub callback) that cannot be suspended");
      return lua_error(L);
    }
    return lua_yield(L, 0);
  }
  // Say where in the policy the failing call was made (level 1 is the Lua caller).
  luaL_where(L, 1);
  lua_insert(L, -2);
  lua_concat(L, 2);
  return lua_error(L);
}

void gh_push_host_function(lua_State *L, int id) {
  lua_pushinteger(L, id);
  lua_pushcclosure(L, gh_trampoline, 1);
}

int gh_is_yieldable(lua_State *L) { return lua_isyieldable(L); }

// MARK: Stack access

int gh_gettop(lua_State *L) { return lua_gettop(L); }
void gh_settop(lua_State *L, int index) { lua_settop(L, index); }
int gh_absindex(lua_State *L, int index) { return lua_absindex(L, index); }
int gh_checkstack(lua_State *L, int n) { return lua_checkstack(L, n); }
void gh_pushvalue(lua_State *L, int index) { lua_pushvalue(L, index); }
void gh_remove(lua_State *L, int index) { lua_remove(L, index); }
void gh_insert(lua_State *L, int index) { lua_insert(L, index); }
void gh_xmove(lua_State *from, lua_State *to, int n) { lua_xmove(from, to, n); }
int gh_type(lua_State *L, int index) { return lua_type(L, index); }
const char *gh_typename(lua_State *L, int type) { return lua_typename(L, type); }
int gh_isinteger(lua_State *L, int index) { return lua_isinteger(L, index); }

void gh_pushnil(lua_State *L) { lua_pushnil(L); }
void gh_pushboolean(lua_State *L, int value) { lua_pushboolean(L, value); }
void gh_pushinteger(lua_State *L, int64_t value) { lua_pushinteger(L, (lua_Integer)value); }
void gh_pushnumber(lua_State *L, double value) { lua_pushnumber(L, (lua_Number)value); }
void gh_pushlstring(lua_State *L, const char *bytes, size_t length) { lua_pushlstring(L, bytes, length); }
void gh_pushlightuserdata(lua_State *L, void *pointer) { lua_pushlightuserdata(L, pointer); }
void gh_createtable(lua_State *L, int narr, int nrec) { lua_createtable(L, narr, nrec); }

int gh_toboolean(lua_State *L, int index) { return lua_toboolean(L, index); }
int64_t gh_tointegerx(lua_State *L, int index, int *isnum) { return (int64_t)lua_tointegerx(L, index, isnum); }
double gh_tonumberx(lua_State *L, int index, int *isnum) { return (double)lua_tonumberx(L, index, isnum); }
const char *gh_tostring_raw(lua_State *L, int index, size_t *length) {
  if (lua_type(L, index) != LUA_TSTRING) return NULL;
  return lua_tolstring(L, index, length);
}
void *gh_touserdata(lua_State *L, int index) { return lua_touserdata(L, index); }

int gh_rawget(lua_State *L, int index) { return lua_rawget(L, index); }
int gh_rawgeti(lua_State *L, int index, int64_t n) { return lua_rawgeti(L, index, (lua_Integer)n); }
void gh_rawset(lua_State *L, int index) { lua_rawset(L, index); }
void gh_rawseti(lua_State *L, int index, int64_t n) { lua_rawseti(L, index, (lua_Integer)n); }
size_t gh_rawlen(lua_State *L, int index) { return (size_t)lua_rawlen(L, index); }
int gh_next(lua_State *L, int index) { return lua_next(L, index); }

int gh_ref(lua_State *L) { return luaL_ref(L, LUA_REGISTRYINDEX); }
void gh_unref(lua_State *L, int ref) { luaL_unref(L, LUA_REGISTRYINDEX, ref); }
int gh_getref(lua_State *L, int ref) { return lua_rawgeti(L, LUA_REGISTRYINDEX, ref); }

static int gh_describe_value(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

const char *gh_describe(lua_State *L, int index, size_t *length) {
  index = lua_absindex(L, index);
  lua_pushcfunction(L, gh_describe_value);
  lua_pushvalue(L, index);
  gh_vm *vm = gh_vm_of(L);
  int saved = vm->host_active;
  vm->host_active = 0; // __tostring is policy code: it runs under the budgets
  int status = lua_pcall(L, 1, 1, 0);
  vm->host_active = saved;
  if (status != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(%s value)", luaL_typename(L, index));
  }
  return lua_tolstring(L, -1, length);
}
