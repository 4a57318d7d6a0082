// Non-raising stack access for Swift. None of these runs Lua code or consults a metamethod.
// While the host uses a state its allocator never refuses (and a genuine allocation failure
// aborts the process), so none of them can longjmp.
#include "gh_internal.h"

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

const char *gh_tostring_plain(lua_State *L, int index, size_t *length) {
  switch (lua_type(L, index)) {
  case LUA_TSTRING:
  case LUA_TNUMBER:
    lua_pushvalue(L, index);
    return lua_tolstring(L, -1, length); // converts the copy; the original keeps its type
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, index)) lua_pushliteral(L, "true"); else lua_pushliteral(L, "false");
    return lua_tolstring(L, -1, length);
  default:
    return NULL;
  }
}
