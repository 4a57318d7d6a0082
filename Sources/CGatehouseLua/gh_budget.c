// Budgets: instructions, CPU time and a wall-clock deadline per invocation, and the rule that a
// budget once hit ends the invocation whatever Lua-level protection stands in between.
//
// Why the rule needs care: when the count hook raises, Lua runs any message handler (xpcall's,
// or ours) while still inside the hook, where hooks are disabled; a looping handler would then
// run forever. And `pcall`, `coroutine.resume`, `coroutine.wrap`, `coroutine.close` and `load`
// with a reader function all catch errors. The sandbox (gh_sandbox.c) wraps each of them to
// rethrow a budget error, never runs a policy's message handler once a budget is hit, and the
// hook fires after every instruction from then on, so nothing more runs until it has unwound.
#include "gh_internal.h"

#include <time.h>

uint64_t gh_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void gh_budget_init(gh_budget *budget, uint64_t instructions, uint64_t cpu_ns, uint64_t wall_ns) {
  budget->instruction_limit = instructions;
  budget->instructions_used = 0;
  budget->cpu_limit_ns = cpu_ns;
  budget->cpu_used_ns = 0;
  budget->wall_deadline_ns = wall_ns ? gh_now_ns() + wall_ns : 0;
  budget->hit = GH_BUDGET_NONE;
}

int gh_budget_check_wall(gh_budget *budget) {
  if (budget->hit == GH_BUDGET_NONE && budget->wall_deadline_ns != 0 && gh_now_ns() > budget->wall_deadline_ns)
    budget->hit = GH_BUDGET_WALL;
  return budget->hit;
}

gh_run gh_run_begin(gh_vm *vm, gh_budget *budget) {
  gh_run run = {vm->budget, vm->run_started_ns, vm->host_active};
  if (run.saved_budget != NULL) // a nested run: the outer stretch pauses here
    run.saved_budget->cpu_used_ns += gh_now_ns() - vm->run_started_ns;
  vm->budget = budget;
  vm->run_started_ns = gh_now_ns();
  vm->host_active = 0;
  return run;
}

void gh_run_end(gh_vm *vm, gh_run run) {
  uint64_t now = gh_now_ns();
  if (vm->budget != NULL) vm->budget->cpu_used_ns += now - vm->run_started_ns;
  vm->budget = run.saved_budget;
  vm->run_started_ns = now;
  vm->host_active = run.saved_host_active;
}

int gh_budget_exhausted(lua_State *L) {
  gh_budget *budget = gh_vm_of(L)->budget;
  return budget != NULL && budget->hit != GH_BUDGET_NONE;
}

static const char *gh_budget_message(int hit) {
  switch (hit) {
  case GH_BUDGET_INSTRUCTIONS: return "instruction budget exceeded";
  case GH_BUDGET_DEADLINE: return "time budget exceeded";
  case GH_BUDGET_MEMORY: return "memory budget exceeded";
  case GH_BUDGET_WALL: return "wall-clock budget exceeded";
  default: return "budget exceeded";
  }
}

int gh_raise_budget(lua_State *L, int level) {
  gh_budget *budget = gh_vm_of(L)->budget;
  lua_sethook(L, gh_count_hook, LUA_MASKCOUNT, 1);
  luaL_where(L, level);
  lua_pushstring(L, gh_budget_message(budget ? budget->hit : GH_BUDGET_NONE));
  lua_concat(L, 2);
  return lua_error(L);
}

int gh_rethrow_budget(lua_State *L) {
  lua_sethook(L, gh_count_hook, LUA_MASKCOUNT, 1);
  return lua_error(L);
}

void gh_count_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  gh_vm *vm = gh_vm_of(L);
  gh_budget *budget = vm->budget;
  if (budget == NULL) return; // Lua code runs only under gh_pcall/gh_resume, which attach one
  int interval = lua_gethookcount(L);
  if (budget->hit == GH_BUDGET_NONE) {
    budget->instructions_used += (uint64_t)interval;
    if (budget->instruction_limit != 0 && budget->instructions_used > budget->instruction_limit) {
      budget->hit = GH_BUDGET_INSTRUCTIONS;
    } else {
      uint64_t now = gh_now_ns();
      if (budget->cpu_limit_ns != 0 && budget->cpu_used_ns + (now - vm->run_started_ns) > budget->cpu_limit_ns)
        budget->hit = GH_BUDGET_DEADLINE;
      else if (budget->wall_deadline_ns != 0 && now > budget->wall_deadline_ns)
        budget->hit = GH_BUDGET_WALL;
    }
    if (budget->hit == GH_BUDGET_NONE) {
      // A thread left firing after every instruction by an earlier invocation's budget (the
      // main thread after a failed module load) goes back to the normal interval.
      if (interval != GH_HOOK_INTERVAL) lua_sethook(L, gh_count_hook, LUA_MASKCOUNT, GH_HOOK_INTERVAL);
      return;
    }
  }
  // Sticky: every later check raises again. Inside a hook, level 0 is the running Lua function.
  gh_raise_budget(L, 0);
}
