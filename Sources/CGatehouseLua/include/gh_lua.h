// CGatehouseLua: the only code in Gatehouse that calls Lua APIs able to raise an error or run
// Lua code. Only gh_load, gh_pcall and gh_resume run Lua code; everything else Swift calls
// touches values only.
//
// Lua raises errors and yields with longjmp. A longjmp across a Swift frame skips `defer`,
// releases and unlocks, so Swift sees only this header: an opaque VM, an opaque thread, and
// functions that never raise. Host functions written in Swift are reached through a C
// trampoline: Swift returns a status and C raises or yields after the Swift frame is gone.
#ifndef GH_LUA_H
#define GH_LUA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A Lua state (thread). Opaque: Swift never sees its fields.
typedef struct lua_State gh_thread;
/// One sandboxed Lua VM with its budgets. Opaque.
typedef struct gh_vm gh_vm;

// Status values (mirror Lua's, so they compare directly).
#define GH_OK 0
#define GH_YIELD 1
#define GH_ERRRUN 2
#define GH_ERRSYNTAX 3
#define GH_ERRMEM 4
#define GH_ERRERR 5

// Type tags (mirror Lua's).
#define GH_TNONE (-1)
#define GH_TNIL 0
#define GH_TBOOLEAN 1
#define GH_TLIGHTUSERDATA 2
#define GH_TNUMBER 3
#define GH_TSTRING 4
#define GH_TTABLE 5
#define GH_TFUNCTION 6
#define GH_TUSERDATA 7
#define GH_TTHREAD 8

/// What a Swift host function returns to its trampoline.
/// n >= 0: n results are on the stack. GH_HOST_ERROR: the message is on top of the stack and C
/// raises it. GH_HOST_YIELD: C yields the running coroutine with no values.
#define GH_HOST_ERROR (-1)
#define GH_HOST_YIELD (-2)

/// Which budget ended an invocation (0 = none).
#define GH_BUDGET_NONE 0
#define GH_BUDGET_INSTRUCTIONS 1
/// Time spent running Lua code (waits for I/O excluded).
#define GH_BUDGET_DEADLINE 2
#define GH_BUDGET_MEMORY 3
/// Time since the invocation started, waits for I/O included.
#define GH_BUDGET_WALL 4

/// The budget of one invocation, carried by the caller across every resume of it (an
/// invocation that yields N times still has one budget). Fields are read by Swift; only the
/// functions below write them.
typedef struct gh_budget {
  uint64_t instruction_limit; // 0 = unlimited
  uint64_t instructions_used;
  uint64_t cpu_limit_ns;      // time running Lua code; 0 = unlimited
  uint64_t cpu_used_ns;
  uint64_t wall_deadline_ns;  // absolute CLOCK_MONOTONIC time; 0 = none
  int hit;                    // GH_BUDGET_*; sticky once set
} gh_budget;

/// Starts a budget: limits as given, the wall-clock allowance counted from now (0 = none).
void gh_budget_init(gh_budget *budget, uint64_t instructions, uint64_t cpu_ns, uint64_t wall_ns);
/// Marks the budget hit if its wall-clock deadline has passed; returns `hit`.
int gh_budget_check_wall(gh_budget *budget);
/// CLOCK_MONOTONIC in nanoseconds.
uint64_t gh_now_ns(void);

/// The single Swift entry point: `id` picks the registered host function.
typedef int (*gh_dispatch_fn)(gh_thread *L, int id, void *context);

// MARK: VM lifecycle

/// Creates a VM whose allocator refuses to grow past `memory_limit` bytes while Lua code runs
/// (0 = unlimited), with the sandboxed standard libraries open. NULL if out of memory.
gh_vm *gh_vm_new(size_t memory_limit);
void gh_vm_close(gh_vm *vm);
gh_thread *gh_vm_main(gh_vm *vm);
void gh_vm_set_dispatch(gh_vm *vm, gh_dispatch_fn fn, void *context);
/// A full garbage collection (used between generations and by tests).
void gh_vm_collect(gh_vm *vm);

// MARK: Protected entry points (the only ways Swift runs Lua code)

/// Loads text-only source as a function on top of the stack (or an error message).
int gh_load(gh_thread *L, const char *source, size_t length, const char *chunkname);
/// lua_pcall under `budget`, with a traceback message handler. On error the top is the message
/// with traceback.
int gh_pcall(gh_thread *L, int nargs, int nresults, gh_budget *budget);
/// lua_resume of `co` from `from` under `budget`. On error the top of `co` is the message with
/// traceback already appended. A budget already hit (or a wall-clock deadline passed while the
/// invocation waited) fails at once without running any Lua code.
int gh_resume(gh_thread *co, gh_thread *from, int nargs, int *nresults, gh_budget *budget);
/// A new coroutine anchored in the registry; `ref` receives the anchor. NULL on failure.
gh_thread *gh_newthread(gh_thread *L, int *ref);
int gh_status(gh_thread *L);

// MARK: Host functions

/// Pushes a Lua function that calls the dispatcher with `id`.
void gh_push_host_function(gh_thread *L, int id);
/// Whether the running function may yield (false inside a C boundary such as a `table.sort`
/// comparator, a `string.gsub` callback, or on the main thread).
int gh_is_yieldable(gh_thread *L);

// MARK: Non-raising stack access (while the host uses a state its allocator never refuses, and a
// genuine allocation failure aborts the process: these never longjmp)

int gh_gettop(gh_thread *L);
void gh_settop(gh_thread *L, int index);
int gh_absindex(gh_thread *L, int index);
int gh_checkstack(gh_thread *L, int n);
void gh_pushvalue(gh_thread *L, int index);
void gh_remove(gh_thread *L, int index);
void gh_insert(gh_thread *L, int index);
void gh_xmove(gh_thread *from, gh_thread *to, int n);
int gh_type(gh_thread *L, int index);
const char *gh_typename(gh_thread *L, int type);
int gh_isinteger(gh_thread *L, int index);

void gh_pushnil(gh_thread *L);
void gh_pushboolean(gh_thread *L, int value);
void gh_pushinteger(gh_thread *L, int64_t value);
void gh_pushnumber(gh_thread *L, double value);
void gh_pushlstring(gh_thread *L, const char *bytes, size_t length);
void gh_pushlightuserdata(gh_thread *L, void *pointer);
void gh_createtable(gh_thread *L, int narr, int nrec);

int gh_toboolean(gh_thread *L, int index);
int64_t gh_tointegerx(gh_thread *L, int index, int *isnum);
double gh_tonumberx(gh_thread *L, int index, int *isnum);
/// Bytes of a string value only (never converts numbers in place). NULL if not a string.
const char *gh_tostring_raw(gh_thread *L, int index, size_t *length);
void *gh_touserdata(gh_thread *L, int index);

/// Raw table access (no metamethods, so no Lua code runs and nothing raises).
int gh_rawget(gh_thread *L, int index);
int gh_rawgeti(gh_thread *L, int index, int64_t n);
void gh_rawset(gh_thread *L, int index);
void gh_rawseti(gh_thread *L, int index, int64_t n);
size_t gh_rawlen(gh_thread *L, int index);
/// lua_next. Lua raises only for a key that is not in the table; callers pass the key the
/// previous call returned, and no Lua code runs between two calls (nothing here runs any), so
/// the table cannot change under the traversal.
int gh_next(gh_thread *L, int index);

int gh_ref(gh_thread *L);
void gh_unref(gh_thread *L, int ref);
int gh_getref(gh_thread *L, int ref);

/// Pushes the text of a string, number or boolean (numbers as Lua's tostring writes them, no
/// metamethod consulted) and returns it; for any other type pushes nothing and returns NULL.
/// Never runs Lua code: a Swift frame must never run policy code (a `__tostring` could change
/// a table under a traversal, or raise through the Swift frame).
const char *gh_tostring_plain(gh_thread *L, int index, size_t *length);

#ifdef __cplusplus
}
#endif

#endif
