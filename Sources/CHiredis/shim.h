// Debian's libhiredis-dev: only its RESP reader (read.h) and command formatter are used; the
// transport is SwiftNIO's (GatehouseRedis). hiredis' own sockets and async adapters are not.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
