// The Lua boundary: VM lifecycle, the capped allocator, the protected entry points and the
// host-function trampoline. Everything that can raise (longjmp) or yield happens in C frames
// only. See include/gh_lua.h and docs/architecture.md ("The Lua boundary").
#include "gh_internal.h"

#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (vm->budget != NULL) vm->budget->hit = GH_BUDGET_MEMORY;
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
    // A policy's __tostring is policy code: run it only while the budget still holds (this
    // handler also runs for errors raised inside the count hook, where hooks are off).
    if (!gh_budget_exhausted(L) && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
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

int gh_pcall(lua_State *L, int nargs, int nresults, gh_budget *budget) {
  gh_vm *vm = gh_vm_of(L);
  int base = lua_gettop(L) - nargs; // the function's slot
  lua_pushcfunction(L, gh_message_handler);
  lua_insert(L, base);
  gh_run run = gh_run_begin(vm, budget);
  int status = lua_pcall(L, nargs, nresults, base);
  gh_run_end(vm, run);
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

int gh_resume(lua_State *co, lua_State *from, int nargs, int *nresults, gh_budget *budget) {
  gh_vm *vm = gh_vm_of(co);
  *nresults = 0;
  if (gh_budget_check_wall(budget) != GH_BUDGET_NONE) {
    // The deadline passed while the invocation waited for I/O (or a budget was already hit):
    // no more of its Lua code runs.
    lua_pushstring(co, budget->hit == GH_BUDGET_WALL ? "wall-clock budget exceeded while waiting for I/O" : "budget exceeded");
    return LUA_ERRRUN;
  }
  gh_run run = gh_run_begin(vm, budget);
  int status = lua_resume(co, from, nargs, nresults);
  gh_run_end(vm, run);
  if (status != LUA_OK && status != LUA_YIELD) {
    // The coroutine's stack is still intact: take its traceback now. (The thread is then
    // dropped, never closed: closing would run its pending __close handlers outside any budget.)
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

int gh_status(lua_State *L) { return lua_status(L); }

// MARK: Host functions

static int gh_trampoline(lua_State *L) {
  // A host function reached after a budget was hit (from C: a sort comparator, a gsub
  // replacement, a metamethod) does not run.
  if (gh_budget_exhausted(L)) return gh_raise_budget(L, 1);
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
