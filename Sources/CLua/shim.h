// Debian's liblua5.4-dev installs its headers under /usr/include/lua5.4 (found via pkg-config).
// Only CGatehouseLua may include this module: Swift must never call raising Lua APIs directly.
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
