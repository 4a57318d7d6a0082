// Internals shared by the C files of the Lua boundary. Not visible to Swift (only include/ is).
#ifndef GH_INTERNAL_H
#define GH_INTERNAL_H

#include "gh_lua.h"

#include <lauxlib.h>
#include <lua.h>

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
  // The invocation whose Lua code is running now (NULL while none is), and when this stretch
  // of running began: its CPU time is counted from there.
  gh_budget *budget;
  uint64_t run_started_ns;
  gh_dispatch_fn dispatch;
  void *dispatch_context;
};

static inline gh_vm *gh_vm_of(lua_State *L) { return *(gh_vm **)lua_getextraspace(L); }

// Budgets (gh_budget.c).
void gh_count_hook(lua_State *L, lua_Debug *ar);
/// Whether the invocation running on L has hit a budget.
int gh_budget_exhausted(lua_State *L);
/// Raises the hit budget's error on L, naming the position at `level`; never returns. Every
/// later instruction on L raises again (the hook fires after each one) until it has unwound.
int gh_raise_budget(lua_State *L, int level);
/// Rethrows the error object on top of L after a protected call caught a budget error.
int gh_rethrow_budget(lua_State *L);
/// Attaches `budget` to the VM for one stretch of running Lua code; returns what to restore.
typedef struct gh_run {
  gh_budget *saved_budget;
  uint64_t saved_started;
  int saved_host_active;
} gh_run;
gh_run gh_run_begin(gh_vm *vm, gh_budget *budget);
void gh_run_end(gh_vm *vm, gh_run run);

// The sandboxed standard library (gh_sandbox.c).
int gh_open_sandbox(lua_State *L);

#endif
