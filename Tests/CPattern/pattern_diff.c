// Differential test of Sources/CGatehouseLua/gh_pattern.c against Lua 5.4's own string
// library: the same calls go to both, and every result (values, their types, error or not,
// error text) must be identical. Then the hostile shapes must stop within the step budget.
//
// Build and run: Tests/CPattern/run.sh (or see the gcc line there). Optional argument: the
// number of random cases (default 200000). Environment PATTERN_DIFF_VERBOSE=1 prints every
// corpus case with its result.
//
// Structure: a Lua harness (below, as a string) runs each case with S = the real string table
// and with S = one whose find/match/gmatch/gsub are ours, with the string metatable's __index
// switched too so method calls ("x"):find(...) reach the same functions. Both runs call from
// the same source line, so error positions and argument-error names agree.
#define _POSIX_C_SOURCE 200809L // fork, pipe, alarm

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../Sources/CGatehouseLua/gh_pattern.h"

static const char HARNESS[] =
    "local real = string\n"
    "local mine = setmetatable({find = gh_find, match = gh_match, gmatch = gh_gmatch,\n"
    "                           gsub = gh_gsub}, {__index = string})\n"
    "MINE = mine\n"
    "local smeta = getmetatable('')\n"
    "local function ser1(v)\n"
    "  local t = type(v)\n"
    "  if t == 'string' then return string.format('%q', v)\n"
    "  elseif t == 'number' then\n"
    "    if math.type(v) == 'integer' then return 'i' .. v end\n"
    "    return 'f' .. string.format('%.17g', v)\n"
    "  elseif t == 'nil' or t == 'boolean' then return tostring(v)\n"
    "  else return t end\n"
    "end\n"
    "local function serpack(r, from)\n"
    "  local out = {}\n"
    "  for i = from, r.n do out[#out + 1] = ser1(r[i]) end\n"
    "  return r.n - from + 1 .. ':' .. table.concat(out, ',')\n"
    "end\n"
    // Every value an iterator yields, until it yields nothing (gmatch's end).
    "function collect(it, max)\n"
    "  local out = {}\n"
    "  for _ = 1, max or 500 do\n"
    "    local r = table.pack(it())\n"
    "    if r[1] == nil then out[#out + 1] = 'end(' .. r.n .. ')' break end\n"
    "    out[#out + 1] = '{' .. serpack(r, 1) .. '}'\n"
    "  end\n"
    "  return table.concat(out, ' ')\n"
    "end\n"
    "local function run(fn, S, ...)\n"
    "  smeta.__index = S\n"
    "  local r = table.pack(pcall(fn, S, ...))\n"
    "  smeta.__index = real\n"
    "  if r[1] then return 'ok ' .. serpack(r, 2) end\n"
    "  return 'error ' .. ser1(r[2])\n"
    "end\n"
    "RUN = run\n"
    // A corpus case: a Lua expression over S. Returns nil, result or a description of the diff.
    "function check_snippet(src)\n"
    "  local fn, err = load('local S = ...; return ' .. src, '=case')\n"
    "  if not fn then return 'case does not compile: ' .. err end\n"
    "  local a, b = run(fn, real), run(fn, mine)\n"
    "  if a ~= b then return src .. '\\n    real: ' .. a .. '\\n    mine: ' .. b end\n"
    "  return nil, a\n"
    "end\n"
    // Random cases: fixed calls, each made from one line for both libraries.
    "local function r_find(S, s, p, init, plain) return table.pack(S.find(s, p, init, plain)) end\n"
    "local function r_match(S, s, p, init) return table.pack(S.match(s, p, init)) end\n"
    "local function r_gmatch(S, s, p, init) return collect(S.gmatch(s, p, init)) end\n"
    "local function r_gsub(S, s, p, repl, n) return table.pack(S.gsub(s, p, repl, n)) end\n"
    "local function fn_repl(a, b)\n"
    "  if a == 'a' then return nil elseif a == 'b' then return false end\n"
    "  return '<' .. tostring(a) .. '|' .. tostring(b) .. '>'\n"
    "end\n"
    "local tbl_repl = {a = 'A', b = false, ab = 'AB', ['('] = 1.5, [')'] = true, [1] = 'one', [3] = 3}\n"
    "local function res(r) return type(r) == 'table' and serpack(r, 1) or r end\n"
    "local function both(what, f, ...)\n"
    "  local a = table.pack(pcall(f, real, ...))\n"
    "  local b = table.pack(pcall(f, mine, ...))\n"
    "  local sa = tostring(a[1]) .. ' ' .. (a[1] and res(a[2]) or ser1(a[2]))\n"
    "  local sb = tostring(b[1]) .. ' ' .. (b[1] and res(b[2]) or ser1(b[2]))\n"
    "  if sa ~= sb then return what .. '\\n    real: ' .. sa .. '\\n    mine: ' .. sb end\n"
    "end\n"
    "function rcompare(s, p, init, plain, repl, n, repl_kind)\n"
    "  local d = both('find', r_find, s, p, init, plain) or both('match', r_match, s, p, init)\n"
    "    or both('gmatch', r_gmatch, s, p, init) or both('gsub', r_gsub, s, p, repl, n)\n"
    "  if not d and repl_kind == 1 then d = both('gsub/function', r_gsub, s, p, fn_repl, n) end\n"
    "  if not d and repl_kind == 2 then d = both('gsub/table', r_gsub, s, p, tbl_repl, n) end\n"
    // What the real find did, so the run can show the mix of outcomes it covered.
    "  local ok, r = pcall(real.find, s, p, init, plain)\n"
    "  return d, not ok and 'error' or r == nil and 'no match' or 'match'\n"
    "end\n";

// MARK: The hand-written corpus

// Each entry is a Lua expression; S is the library under test. Method calls on strings go to
// the same library. Single quotes inside, so the C text stays readable.
static const char *const CORPUS[] = {
    // find: positions, init, plain
    "S.find('hello world', 'o')",
    "S.find('hello world', 'o', 6)",
    "S.find('hello world', 'o', -3)",
    "S.find('hello world', 'o', -100)",
    "S.find('hello world', 'o', 0)",
    "S.find('hello world', 'o', 12)",
    "S.find('hello world', 'o', 13)",
    "S.find('hello world', '', 12)",
    "S.find('hello world', '', 13)",
    "S.find('hello world', '', 100)",
    "S.find('', '')",
    "S.find('', '', 1)",
    "S.find('', '', 2)",
    "S.find('', 'a')",
    "S.find('abc', '', -1)",
    "S.find('abc', 'c', math.maxinteger)",
    "S.find('abc', 'a', math.mininteger)",
    "S.find('a.b', '.', 1, true)",
    "S.find('a.b', '.')",
    "S.find('a+b', '+', 1, true)",
    "S.find('a+b', 'a+', 1, 1)",
    "S.find('a+b', 'a+', 1, nil)",
    "S.find('a(b', '(', 1, true)",
    "S.find('x)y', ')')",
    "S.find('x]y', ']')",
    "S.find('abcabc', 'cab')",
    "S.find('abcabc', 'abd')",
    "S.find('aaab', 'aab')",
    "S.find('a\\0b', '\\0b')",
    "S.find('a\\0b', '\\0b', 1, true)",
    "S.find('needle in a haystack', 'needle', 1, true)",
    "S.find('hello', 'l+')",
    "S.find('hello', '(l+)(o)')",
    "S.find('hello', '()ll()')",
    "S.find('hello', 'xyz')",
    "S.find(12345, 3)",
    "S.find(1.5, '.', 1, true)",
    "S.find('abc', 'b', '2')",
    // match
    "S.match('hello world', '%a+')",
    "S.match('hello world', '(%a+) (%a+)')",
    "S.match('hello world', '%a+', 6)",
    "S.match('hello world', '^world')",
    "S.match('hello world', '^hello')",
    "S.match('hello world', 'world$')",
    "S.match('hello world', 'hello$')",
    "S.match('a$b', 'a$b')",
    "S.match('a^b', 'a^b')",
    "S.match('abc', '')",
    "S.match('abc', '()')",
    "S.match('abc', '()', 4)",
    "S.match('abc', '()', 5)",
    "S.match('abc', 'b', -1)",
    "S.match('key = value', '(%w+)%s*=%s*(%w+)')",
    "S.match('2024-01-15', '(%d+)-(%d+)-(%d+)')",
    "S.match('  trim me  ', '^%s*(.-)%s*$')",
    "S.match('', '^%s*(.-)%s*$')",
    "S.match('a)', ')')",
    // realistic policy patterns
    "S.find('sk_live_123', '^sk_')",
    "S.find('pk_live_123', '^sk_')",
    "S.match('order 66 and 77', '%d+')",
    "S.match('/v1/users/42', '^/v1/(.*)$')",
    "S.match('/v2/users/42', '^/v1/(.*)$')",
    "S.match('Bearer   abc.def.ghi', '^Bearer%s+(.+)$')",
    "S.match('Bearer ', '^Bearer%s+(.+)$')",
    "S.match('Basic abc', '^Bearer%s+(.+)$')",
    "S.match('application/json; charset=utf-8', '^([^;]+)')",
    "S.match('192.168.0.1', '^(%d+)%.(%d+)%.(%d+)%.(%d+)$')",
    "S.match('user@example.com', '^[%w._%-]+@[%w.-]+%.%a+$')",
    "collect(S.gmatch('/api/v1/users/42', '[^/]+'))",
    "collect(S.gmatch('a=1&bb=22&ccc=333', '(%w+)=(%w+)'))",
    "collect(S.gmatch('a=1, b=2', '(%w+)=(%w+)'))",
    "collect(S.gmatch('THE (quick) fox', '%f[%a]%a+'))",
    "collect(S.gmatch('hello world from lua', '%f[%w]%w+'))",
    "S.find('f(a(b)c)d', '%b()')",
    "S.match('f(a(b)c)d', '%b()')",
    "S.match('x = {a = {b}} y', '%b{}')",
    "S.gsub('hello world', '%f[%w]%w+', string.upper)",
    "S.gsub('hello world', '(%w+)', '<%1>')",
    "S.gsub('hello world', '%w+', '%0 %0', 1)",
    "S.gsub('abc', '%w', '%1')",
    "S.gsub('$name is $age', '%$(%w+)', {name = 'Bob', age = 42})",
    "S.gsub('$name is $unknown', '%$(%w+)', {name = 'Bob'})",
    "S.gsub('hello', '', '-')",
    "S.gsub('', '', '-')",
    "S.gsub('abc', 'b*', '-')",
    "S.gsub('abc', 'x*', '-')",
    "S.gsub('a,b,,c', ',', ';')",
    "S.gsub('  a  b  ', '%s+', ' ')",
    "S.gsub('  a  b  ', '^%s+', '')",
    "S.gsub('aaa', '^a', 'b')",
    "S.gsub('aaa', '^', 'x')",
    "S.gsub('aaa', '$', 'x')",
    "S.gsub('aaa', 'a', 'b', 0)",
    "S.gsub('aaa', 'a', 'b', -1)",
    "S.gsub('aaa', 'a', 'b', 2)",
    "S.gsub('aaa', 'a', 'b', 2.0)",
    "S.gsub('aaa', 'a', 'b', '2')",
    "S.gsub('aaa', 'a', 'b', 100)",
    "S.gsub('abc', '%w', '%%')",
    "S.gsub('abc', '%w', '%0%0')",
    "S.gsub('hello world', '(o)', '[%1]')",
    "S.gsub('hello', '()l', '%1')",
    "S.gsub('hello', 'l', 7)",
    "S.gsub(12345, '3', 9)",
    "S.gsub(123, 'x', 'y')",
    "S.gsub('abc', '%w', function(c) return c:upper() .. '.' end)",
    "S.gsub('abc', '%w', function(c) if c == 'b' then return nil end return 'X' end)",
    "S.gsub('abc', '%w', function(c) return false end)",
    "S.gsub('abc', '%w', function(c) return 1 end)",
    "S.gsub('abc', '%w', function(c) return 1.5 end)",
    "S.gsub('abc', '%w', function(c) return 2^53 end)",
    "S.gsub('abc', '%w', function(c) return {} end)",
    "S.gsub('abc', '%w', function(c) return true end)",
    "S.gsub('abc', '%w', function(c) error('boom ' .. c) end)",
    "S.gsub('abc', '%w', function(c) error({}) end)",
    "S.gsub('abc', '(%w)()', function(c, p) return c .. p end)",
    "S.gsub('abc', '()', function(p) return '[' .. p .. ']' end)",
    "S.gsub('a=1, b=2', '(%w+)=(%w+)', function(k, v) return v .. '=' .. k end)",
    "S.gsub('a b', '%w', function(...) return select('#', ...) end)",
    "S.gsub('abc', '%w', {a = 1, b = true})",
    "S.gsub('abc', '%w', {a = 'A'})",
    "S.gsub('abc', '()', {[1] = 'x', [3] = 'z'})",
    "S.gsub('abc', '%w', setmetatable({}, {__index = function(t, k) return k:rep(2) end}))",
    "S.gsub('abc', '(%w)', '%2')",
    "S.gsub('abc', '%w', '%')",
    "S.gsub('abc', '%w', 'x%')",
    "S.gsub('abc', '%w', '%a')",
    "S.gsub('abc', 'x', '%a')",
    "S.gsub('abc', '(', '')",
    "S.gsub('abc', '(b', '')",
    "S.gsub('abc', '(b', function() end)",
    "S.gsub('abc', '(b', {})",
    "S.gsub('abc', '(b', '%1')",
    "S.gsub('abc', '(b', '%0')",
    // gmatch: 5.4 empty-match progression, init, '^' (a literal in gmatch)
    "collect(S.gmatch('abc', 'x*'))",
    "collect(S.gmatch('abc', ''))",
    "collect(S.gmatch('abc', '()'))",
    "collect(S.gmatch('aab', 'a*'))",
    "collect(S.gmatch('abaab', 'a-'))",
    "collect(S.gmatch('hello world', '%a+'))",
    "collect(S.gmatch('hello world', '%a+', 3))",
    "collect(S.gmatch('hello world', '%a+', -5))",
    "collect(S.gmatch('hello world', '%a+', 0))",
    "collect(S.gmatch('hello world', '%a+', 100))",
    "collect(S.gmatch('hello', '', 6))",
    "collect(S.gmatch('hello', '', 7))",
    "collect(S.gmatch('^a^a', '^a'))",
    "collect(S.gmatch('aaa', '^a'))",
    "collect(S.gmatch('k1=v1;k2=v2', '(%w+)=(%w+)'))",
    "collect(S.gmatch('one two', '()(%a+)()'))",
    "collect(S.gmatch('aaa', '(a'))",
    "collect(S.gmatch('aaa', '%'))",
    "collect(S.gmatch('', 'x*'))",
    "collect(S.gmatch(12321, '2'))",
    "(function() local it = S.gmatch('a b c', '%a'); local co = coroutine.wrap(function() return it(), it() end); return co(), it(), it() end)()",
    "(function() local it = S.gmatch('aaa', '((((((%'); for i = 1, 40 do pcall(it) end; return pcall(it) end)()",
    "(function() local n = 0; for k, v in S.gmatch('a=1 b=2', '(%w)=(%w)') do n = n + v end; return n end)()",
    // methods through the string metatable
    "('hello'):find('l')",
    "('hello'):match('(h)(e)')",
    "collect(('a,b'):gmatch('[^,]+'))",
    "('hello'):gsub('l', 'L')",
    "('x'):find({})",
    "('x').find(nil, 'x')",
    "('x'):gsub('x')",
    "('x'):gsub('x', true)",
    "(function() local t = {find = S.find}; return t:find('x') end)()",
    "(function() local t = {gsub = S.gsub}; return t:gsub('x', 'y') end)()",
    // iterators after their end, callbacks that yield or recurse
    "(function() local it = S.gmatch('ab', 'a'); return it(), it(), it() end)()",
    "coroutine.wrap(function() return S.gsub('a', 'a', function() coroutine.yield() end) end)()",
    "S.gsub('a(b)c', '%b()', function(s) return (S.gsub(s, '%w', '%0%0')) end)",
    "S.gsub('a b', '%w', function(w) return S.match(w, '(%w)') .. S.find('xyz', 'y') end)",
    "S.gsub('abc', '', '\\0')",
    "S.gsub('a\\0b', '\\0', '%0%0')",
    "S.find('a\\0.b', '\\0.')",
    "S.find('a\\0.b', '\\0.', 1, true)",
    "S.find('a.b', '.', 1, 'yes')",
    "S.find('a.b', '.', 1, false)",
    "S.find('abc', 'b', 2.0)",
    "S.gsub('aaa', 'a', 'b', math.maxinteger)",
    "S.gsub('aaa', 'a', 'b', math.mininteger)",
    "S.match('abc', '((a)(b)(c))()')",
    // classes, and their complements
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%a', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%A', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%c', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%C', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%d', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%D', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%g', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%G', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%l', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%L', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%p', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%P', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%s', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%S', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%u', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%U', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%w', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%W', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255 fF', '%x', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255 fF', '%X', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%z', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '%Z', '#')",
    "S.gsub('aB1 _.\\t\\n\\0\\127\\200\\255', '.', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%p', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%.', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%%', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%(', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%]', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%^', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%$', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%-', '#')",
    "S.gsub('a.b%c(d)e[f]g^h$i-j*k+l?m', '%*%+', '#')",
    // sets
    "S.gsub('abc-xyz]^', '[a-c]', '#')",
    "S.gsub('abc-xyz]^', '[^a-c]', '#')",
    "S.gsub('abc-xyz]^', '[a-]', '#')",
    "S.gsub('abc-xyz]^', '[-a]', '#')",
    "S.gsub('abc-xyz]^', '[]]', '#')",
    "S.gsub('abc-xyz]^', '[^]]', '#')",
    "S.gsub('abc-xyz]^', '[]a]', '#')",
    "S.gsub('abc-xyz]^', '[a^]', '#')",
    "S.gsub('abc-xyz]^', '[%]]', '#')",
    "S.gsub('abc-xyz]^', '[%a-]', '#')",
    "S.gsub('abc-xyz]^', '[%a-z]', '#')",
    "S.gsub('abc-xyz]^', '[z-a]', '#')",
    "S.gsub('abc-xyz]^%', '[a-%]', '#')",
    "S.gsub('abc-xyz]^%', '[a-%]]', '#')",
    "S.gsub('abc-xyz]^%', '[%%]', '#')",
    "S.gsub('abc-xyz]^%', '[%W]', '#')",
    "S.gsub('abc-xyz]^%', '[^%W]', '#')",
    "S.gsub('abc-xyz]^%', '[%w_%-]+', '#')",
    "S.gsub('a\\0b\\0', '[%z]', '#')",
    "S.gsub('a\\0b\\0', '[\\0]', '#')",
    "S.gsub('a\\0b\\0', '[\\0-a]', '#')",
    "S.gsub('\\128\\200\\255a', '[\\128-\\255]+', '#')",
    "S.gsub('abc', '[', '#')",
    "S.gsub('abc', '[a', '#')",
    "S.gsub('abc', '[]', '#')",
    "S.gsub('abc', '[^]', '#')",
    "S.gsub('abc', '[^', '#')",
    "S.gsub('abc', '[%', '#')",
    "S.gsub('abc', '[a%', '#')",
    "S.gsub('abc', '[a%]', '#')",
    // quantifiers
    "S.match('aaab', 'a*')",
    "S.match('aaab', 'a+')",
    "S.match('aaab', 'a-')",
    "S.match('aaab', 'a-b')",
    "S.match('aaab', 'a?')",
    "S.match('aaab', 'a?a?a?a?b')",
    "S.match('b', 'a+')",
    "S.match('b', 'a*b')",
    "S.match('b', 'a?b')",
    "S.match('b', 'a-b')",
    "S.match('<a><b>', '<(.-)>')",
    "S.match('<a><b>', '<(.*)>')",
    "S.match('<a><b>', '<(.+)>')",
    "S.match('abc', '.-$')",
    "S.match('x = 10', '^(%w+)%s*=%s*(%d+)$')",
    "S.match('ab', '(a)*')",
    "S.match('a*', '(a)*')",
    "S.match('+a', '+a')",
    "S.match('*a', '*a')",
    "S.match('-a', '-a')",
    "S.match('?a', '?a')",
    // captures and back-references
    "S.match('hello', '(h)(e)(l)(l)(o)')",
    "S.match('hello', '((h)(e))')",
    "S.match('hello', '(h(e(l)))')",
    "S.match('hello', '()')",
    "S.match('hello', '()h()')",
    "S.match('hello', 'l()l')",
    "S.match('xyzzy', '(z)%1')",
    "S.match('say \"hi\" now', '([\"\\'])(.-)%1')",
    "S.match('abab', '(ab)%1')",
    "S.match('abac', '(ab)%1')",
    "S.match('aa', '()a%1')",
    "S.match('(x)', '()%1')",
    "S.match('aa', '(a)%2')",
    "S.match('aa', '(a%1)')",
    "S.match('aa', '%1')",
    "S.match('aa', '%0')",
    "S.match('aa', '(a)%9')",
    "S.match('aa', '(a')",
    "S.find('aa', '(a')",
    "S.find('bb', '(a')",
    "S.match('aa', 'a)')",
    "S.find('aa', 'a)')",
    "S.match('aa', '(()')",
    "S.match('a', string.rep('()', 32))",
    "S.match('a', string.rep('()', 33))",
    "S.find('a', string.rep('()', 32))",
    "S.match('a', string.rep('(', 40))",
    "S.match(string.rep('a', 300), string.rep('a?', 250))",
    "S.match(string.rep('a', 300), string.rep('a?', 198))",
    "S.match(string.rep('a', 300), string.rep('a?', 199))",
    "S.match(string.rep('a', 300), string.rep('a?', 200))",
    "S.match(string.rep('a', 300), string.rep('(a)', 31) .. '(.-)$')",
    "S.match('abc', string.rep('(', 10) .. 'abc' .. string.rep(')', 10))",
    // %b and %f
    "S.match('((a)(b))c', '%b()')",
    "S.match('(a(b)', '%b()')",
    "S.match(')(', '%b()')",
    "S.match('aXbXc', '%bXX')",
    "S.match('abba', '%bab')",
    "S.match('[[x]]', '%b[]')",
    "S.match('((x)', '%b()')",
    "S.match('((x)', '%b()$')",
    "S.match('a', '%b')",
    "S.match('a', '%ba')",
    "S.match('a', '%b()%b')",
    "S.match('(a)', '%b()*')",
    "S.gsub('THE (quick) fox', '%f[%a]', '|')",
    "S.gsub('THE (quick) fox', '%f[%A]', '|')",
    "S.gsub('hello world', '%f[%w]%w+', '<%0>')",
    "S.find('abc', '%f[%z]')",
    "S.find('abc', '%f[a]')",
    "S.find('abc', '%f[^a]')",
    "S.find('', '%f[%z]')",
    "S.find('', '%f[^%z]')",
    "S.find('a', '%f')",
    "S.find('a', '%fa')",
    "S.find('a', '%f[a')",
    "S.find('a', '%f[]')",
    // malformed patterns and the other errors
    "S.find('a', '%')",
    "S.find('a', 'a%')",
    "S.match('a', '%')",
    "collect(S.gmatch('a', '%'))",
    "S.gsub('a', '%', 'x')",
    "S.find('a', '[a')",
    "S.find('a', '[%a')",
    "S.find('a', ')')",
    "S.find('a', 'a)')",
    "S.match('a', ')')",
    "S.find('a', '%1')",
    "S.find(nil, 'a')",
    "S.find('a')",
    "S.find('a', 'b', 'x')",
    "S.find('a', 'b', 1.5)",
    "S.find('a', 'b', {})",
    "S.match({}, 'a')",
    "S.gmatch()",
    "S.gmatch('a', nil)",
    "S.gmatch('a', 'a', 'z')",
    "S.gsub('a', 'a')",
    "S.gsub('a', 'a', true)",
    "S.gsub('a', 'a', nil, 1)",
    "S.gsub('a', 'a', 'b', 'x')",
    "S.gsub('a', 'a', 'b', 1.5)",
    "S.gsub('a', '(', 'b', 'x')",
};

// MARK: Random cases

static uint64_t rng = 0x2545F4914F6CDD1Dull; // fixed seed: reproducible

static uint64_t next_random(void) { // splitmix64
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int pick(int n) { return (int)(next_random() % (uint64_t)n); }

static const char ALPHABET[] = "ab%.()[]^$-";

static char random_subject_char(void) {
  // 'a' and 'b' more often, so patterns match more often; still only this alphabet.
  return pick(4) ? "ab"[pick(2)] : ALPHABET[pick((int)sizeof ALPHABET - 1)];
}

static const char *choose(const char *const *options, int n) { return options[pick(n)]; }
#define CHOOSE(array) choose(array, (int)(sizeof(array) / sizeof(array[0])))

static void append(char *buf, size_t *len, const char *text) {
  size_t n = strlen(text);
  if (*len + n < 200) {
    memcpy(buf + *len, text, n);
    *len += n;
  }
}

static void append_char(char *buf, size_t *len, char c) {
  if (*len + 1 < 200)
    buf[(*len)++] = c;
}

static void random_items(char *buf, size_t *len, int count, int nesting);

static void random_set(char *buf, size_t *len) {
  static const char *const elements[] = {"a", "b", "a-b", "b-a", "%a", "%p", "%w", "%]", "%%",
                                         "-", "^", ".", "(", ")", "$", "%-", "a-", "]", "[",
                                         "%A", "%."};
  append_char(buf, len, '[');
  if (pick(3) == 0)
    append_char(buf, len, '^');
  if (pick(8) == 0)
    append_char(buf, len, ']'); // ']' first is a literal
  int n = 1 + pick(3);
  for (int i = 0; i < n; i++)
    append(buf, len, CHOOSE(elements));
  if (pick(12) != 0)
    append_char(buf, len, ']');
}

static void random_item(char *buf, size_t *len, int nesting) {
  static const char *const classes[] = {"%a", "%d", "%s", "%w", "%p", "%l", "%u", "%x", "%c",
                                        "%g", "%z", "%A", "%W", "%P", "%S", "%Z", "%G"};
  static const char *const escapes[] = {"%.", "%%", "%(", "%)", "%[", "%]", "%^", "%$", "%-",
                                        "%*", "%a", "%b", "%f"};
  static const char *const balances[] = {"%b()", "%bab", "%b[]", "%bba", "%b", "%ba", "%b((",
                                         "%b%)"};
  static const char *const frontiers[] = {"%f[%w]", "%f[a]", "%f[^a]", "%f[%p]", "%f[ab]",
                                          "%f", "%fa", "%f[a", "%f[%z]", "%f[^%z]", "%f[]]"};
  static const char *const backrefs[] = {"%1", "%2", "%0", "%1", "%3"};
  int kind = pick(22);
  int single = 0; // can a quantifier follow (it may anyway: then it is a literal)
  switch (kind) {
  case 0: case 1: case 2: case 3: case 4:
    append_char(buf, len, "ab"[pick(2)]);
    single = 1;
    break;
  case 5: append_char(buf, len, ALPHABET[pick((int)sizeof ALPHABET - 1)]); single = 1; break;
  case 6: append_char(buf, len, '.'); single = 1; break;
  case 7: append(buf, len, CHOOSE(classes)); single = 1; break;
  case 8: append(buf, len, CHOOSE(escapes)); single = 1; break;
  case 9: case 10: random_set(buf, len); single = 1; break;
  case 11: case 12:
    append_char(buf, len, '(');
    if (nesting < 2)
      random_items(buf, len, 1 + pick(2), nesting + 1);
    else
      append_char(buf, len, 'a');
    if (pick(10) != 0)
      append_char(buf, len, ')');
    break;
  case 13: append(buf, len, "()"); break;
  case 14: append(buf, len, CHOOSE(balances)); break;
  case 15: append(buf, len, CHOOSE(frontiers)); break;
  case 16: append(buf, len, CHOOSE(backrefs)); break;
  case 17: append_char(buf, len, pick(2) ? ')' : '('); break;
  case 18: append_char(buf, len, '$'); break;
  case 19: append_char(buf, len, '%'); break;
  case 20: append_char(buf, len, '^'); break;
  default: append_char(buf, len, "*+-?"[pick(4)]); break; // a quantifier with nothing before
  }
  if (single && pick(100) < 40)
    append_char(buf, len, "*+-?"[pick(4)]);
}

static void random_items(char *buf, size_t *len, int count, int nesting) {
  for (int i = 0; i < count; i++)
    random_item(buf, len, nesting);
}

// A pattern made from a piece of the subject, so that it usually matches: each byte becomes
// itself (escaped when special), '.', a class or a set that holds it, perhaps repeated, with
// captures around some runs.
static size_t derived_pattern(char *buf, const char *subject, size_t ls) {
  size_t len = 0;
  size_t from = ls ? (size_t)pick((int)ls) : 0;
  size_t to = from + (size_t)pick((int)(ls - from) + 1);
  int open = 0;
  if (pick(4) == 0)
    append_char(buf, &len, '^');
  for (size_t i = from; i < to; i++) {
    char c = subject[i];
    if (pick(5) == 0 && open < 3) {
      append(buf, &len, pick(6) ? "(" : "()");
      open += buf[len - 1] == '(';
    }
    switch (pick(8)) {
    case 0: append_char(buf, &len, '.'); break;
    case 1: append(buf, &len, c == 'a' || c == 'b' ? "%a" : "%p"); break;
    case 2:
      append(buf, &len, pick(2) ? "[" : "[^x");
      if (c != 'a' && c != 'b')
        append_char(buf, &len, '%');
      append_char(buf, &len, c);
      append(buf, &len, pick(2) ? "]" : "a-b]");
      break;
    default:
      if (c != 'a' && c != 'b')
        append_char(buf, &len, '%');
      append_char(buf, &len, c);
      break;
    }
    if (pick(4) == 0)
      append_char(buf, &len, "*+-?"[pick(4)]);
    if (open > 0 && pick(4) == 0) {
      append_char(buf, &len, ')');
      open--;
    }
    if (pick(12) == 0)
      append(buf, &len, pick(2) ? "%1" : "%f[%p]");
  }
  while (open-- > 0 && pick(8) != 0)
    append_char(buf, &len, ')');
  if (pick(4) == 0)
    append_char(buf, &len, '$');
  return len;
}

static size_t random_pattern(char *buf, const char *subject, size_t ls) {
  if (pick(10) < 4)
    return derived_pattern(buf, subject, ls);
  size_t len = 0;
  if (pick(5) == 0)
    append_char(buf, &len, '^');
  random_items(buf, &len, 1 + pick(4), 0);
  if (pick(6) == 0)
    append_char(buf, &len, '$');
  return len;
}

// MARK: Running Lua from C

static lua_State *L;
static int passed, failed;

static void fail(const char *what, const char *detail) {
  failed++;
  if (failed <= 30)
    printf("FAIL %s\n    %s\n", what, detail);
}

static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

static void run_corpus(int verbose) {
  int n = (int)(sizeof CORPUS / sizeof CORPUS[0]);
  for (int i = 0; i < n; i++) {
    lua_getglobal(L, "check_snippet");
    lua_pushstring(L, CORPUS[i]);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
      fail(CORPUS[i], lua_tostring(L, -1));
      lua_pop(L, 1);
      continue;
    }
    if (lua_isnil(L, -2)) {
      passed++;
      if (verbose)
        printf("ok   %s\n     -> %s\n", CORPUS[i], lua_tostring(L, -1));
    } else {
      fail("corpus case", lua_tostring(L, -2));
    }
    lua_pop(L, 2);
  }
  printf("corpus: %d cases\n", n);
}

static void run_random(long count) {
  static const char *const repls[] = {"x", "%0", "%1", "%2", "<%1|%0>", "%%", "%", "%a", "",
                                      "%9", "[%1]"};
  char subject[16], pattern[256];
  long failed_before = failed;
  long errors = 0, misses = 0, matches = 0;
  for (long i = 0; i < count; i++) {
    size_t ls = (size_t)pick(13);
    for (size_t k = 0; k < ls; k++)
      subject[k] = random_subject_char();
    size_t lp = random_pattern(pattern, subject, ls);
    lua_getglobal(L, "rcompare");
    lua_pushlstring(L, subject, ls);
    lua_pushlstring(L, pattern, lp);
    if (pick(10) < 6)
      lua_pushnil(L);
    else
      lua_pushinteger(L, pick(29) - 14);
    lua_pushboolean(L, pick(10) == 0);
    lua_pushstring(L, CHOOSE(repls));
    if (pick(10) < 7)
      lua_pushnil(L);
    else
      lua_pushinteger(L, pick(5) - 1);
    lua_pushinteger(L, pick(3)); // 0: string only, 1: also a function, 2: also a table
    if (lua_pcall(L, 7, 2, 0) != LUA_OK) {
      fail("random harness error", lua_tostring(L, -1));
      lua_pop(L, 1);
      continue;
    }
    const char *outcome = lua_tostring(L, -1);
    errors += outcome[0] == 'e';
    misses += outcome[0] == 'n';
    matches += outcome[0] == 'm';
    lua_pop(L, 1);
    if (!lua_isnil(L, -1)) {
      char what[400];
      snprintf(what, sizeof what, "random #%ld: subject '%.*s' pattern '%.*s'", i, (int)ls,
               subject, (int)lp, pattern);
      fail(what, lua_tostring(L, -1));
    } else {
      passed++;
    }
    lua_pop(L, 1);
  }
  printf("random: %ld cases (find: %ld matched, %ld did not, %ld raised), %ld failed\n", count,
         matches, misses, errors, (long)(failed - failed_before));
}

// Runs `code` (a chunk over S = the given library, H = subject, P = pattern) once; returns the
// CPU seconds and leaves "ok <results>" or "error <message>" on the stack.
static double timed_run(const char *code, const char *library, const char *subject,
                        size_t subject_len, const char *pattern) {
  lua_pushlstring(L, subject, subject_len);
  lua_setglobal(L, "H");
  lua_pushstring(L, pattern);
  lua_setglobal(L, "P");
  lua_getglobal(L, "RUN");
  if (luaL_loadbuffer(L, code, strlen(code), "=hostile") != LUA_OK) {
    lua_remove(L, -2);
    return 0;
  }
  lua_getglobal(L, library);
  double t0 = cpu_seconds();
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    lua_pushfstring(L, "harness error %s", lua_tostring(L, -1));
    lua_remove(L, -2);
  }
  return cpu_seconds() - t0;
}

// The real library's result for a case, computed in a child process that gets `seconds` of
// time: the real matcher cannot be interrupted, and if ours returned early by mistake the
// real one may need hours. NULL when the child did not finish; otherwise free() it.
static char *real_result_with_timeout(const char *code, const char *subject, size_t len,
                                      const char *pattern, unsigned seconds) {
  int fds[2];
  if (pipe(fds) != 0)
    return NULL;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    return NULL;
  if (pid == 0) {
    close(fds[0]);
    alarm(seconds);
    timed_run(code, "string", subject, len, pattern);
    size_t n;
    const char *r = lua_tolstring(L, -1, &n);
    while (n > 0) {
      ssize_t w = write(fds[1], r, n);
      if (w <= 0)
        _exit(1);
      r += w;
      n -= (size_t)w;
    }
    _exit(0);
  }
  close(fds[1]);
  size_t cap = 4096, used = 0;
  char *buf = malloc(cap);
  ssize_t got;
  while ((got = read(fds[0], buf + used, cap - used - 1)) > 0) {
    used += (size_t)got;
    if (cap - used < 2)
      buf = realloc(buf, cap *= 2);
  }
  close(fds[0]);
  buf[used] = '\0';
  int status;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

static const char *const CALLS[][2] = {
    {"find", "local S = ...; return S.find(H, P)"},
    {"match", "local S = ...; return S.match(H, P)"},
    {"gmatch", "local S = ...; return collect(S.gmatch(H, P), 100000)"},
    {"gsub", "local S = ...; return S.gsub(H, P, 'x')"},
};

static char *repeat(const char *unit, size_t total) {
  size_t lu = strlen(unit);
  char *s = malloc(total + 1);
  for (size_t i = 0; i < total; i++)
    s[i] = unit[i % lu];
  s[total] = '\0';
  return s;
}

static double worst_time;
static char worst_case[200];

static void run_hostile(void) {
  // A long literal forced through the matcher ('$' is special): each start compares ~32 K bytes.
  char *long_literal = repeat("a", 32768 + 2);
  memcpy(long_literal + 32768, "b$", 2);
  // A 60 KB set: each test scans it.
  char *big_set = repeat("c", 60000 + 5);
  big_set[0] = '[';
  memcpy(big_set + 60001, "a]*b", 4);
  struct {
    const char *pattern;
    const char *unit; // the subject repeats this...
    const char *last; // ...and ends with this (so that it almost matches)
  } cases[] = {
      {"a-a-a-a-b", "a", "a"},
      {"%w+%w+%w+b", "a", "a"},
      {"[ab]+[ab]+[ab]+c", "ab", "b"},
      {".-.-.-x", "a", "a"},
      {"a*a*a*a*b", "a", "a"},
      {"(.-)%s*$", " ", "x"},
      {"^%s*(.-)%s*$", " ", "x"},
      {"(.-)%s*x", " ", " "},
      {".*.*.*=", "a", "a"},
      {"(.*)%1x", "a", "a"},
      {"%b()", "(", "("},
      {"(a-)%1b", "a", "a"},
      {"[%w%p%s]*[%w%p%s]*[%w%p%s]*!", "a", "a"},
      {long_literal, "a", "a"},
      {big_set, "a", "a"},
  };
  size_t sizes[] = {300, 65536};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const char *pattern = cases[c].pattern, *last = cases[c].last;
    for (int z = 0; z < 2; z++) {
      size_t n = sizes[z];
      char *subject = repeat(cases[c].unit, n);
      memcpy(subject + n - strlen(last), last, strlen(last));
      for (int f = 0; f < 4; f++) {
        double t = timed_run(CALLS[f][1], "MINE", subject, n, pattern);
        const char *result = lua_tostring(L, -1);
        char what[200];
        snprintf(what, sizeof what, "%s('%.24s%s' on %zu bytes)", CALLS[f][0], pattern,
                 strlen(pattern) > 24 ? "..." : "", n);
        int costly = strstr(result, "pattern too costly") != NULL;
        int ok = strncmp(result, "ok ", 3) == 0;
        printf("  %-56s %7.3f s  %s\n", what, t, costly ? "too costly" : ok ? "returned" : result);
        if (t > worst_time) {
          worst_time = t;
          snprintf(worst_case, sizeof worst_case, "%s", what);
        }
        if (t >= 1.0) {
          fail(what, "took 1 s of CPU or more");
        } else if (!costly && !ok) {
          fail(what, result);
        } else if (ok) {
          // It finished within the budget, so the real library should finish about as fast.
          char *real = real_result_with_timeout(CALLS[f][1], subject, n, pattern, 20);
          if (real == NULL)
            fail(what, "returned, but the real library takes more than 20 s here");
          else if (strcmp(real, result) != 0)
            fail(what, "differs from the real library");
          else
            passed++;
          free(real);
        } else {
          passed++;
        }
        lua_pop(L, 1);
      }
      free(subject);
    }
  }
  free(long_literal);
  free(big_set);
}

// The smallest budget with which `code` still succeeds (for the report).
static size_t steps_needed(const char *code, const char *subject, size_t len, const char *pattern) {
  size_t saved = gh_pattern_step_limit, lo = 1, hi = saved;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    gh_pattern_step_limit = mid;
    timed_run(code, "MINE", subject, len, pattern);
    int ok = strncmp(lua_tostring(L, -1), "ok ", 3) == 0;
    lua_pop(L, 1);
    if (ok)
      hi = mid;
    else
      lo = mid + 1;
  }
  gh_pattern_step_limit = saved;
  return lo;
}

static void run_benign(void) {
  // A 64 KiB subject of each realistic kind.
  size_t n = 65536;
  char *key = repeat("sk_live_0123456789abcdef", n);
  char *path = repeat("/segment", n);
  char *query = repeat("key=value&", n);
  char *text = repeat("lorem ipsum dolor sit amet, 42 ", n);
  char *bearer = repeat("x", n);
  memcpy(bearer, "Bearer   ", 9);
  char *needle = repeat("x", n);
  memcpy(needle + n - 6, "needle", 6);
  char *nested = repeat("x", n);
  nested[0] = '(';
  nested[n / 2] = '(';
  nested[n / 2 + 1] = ')';
  nested[n - 1] = ')';
  struct {
    const char *name, *code, *subject, *pattern;
  } cases[] = {
      {"find ^sk_", "local S = ...; return S.find(H, P)", key, "^sk_"},
      {"match %d+", "local S = ...; return S.match(H, P)", key, "%d+"},
      {"gmatch [^/]+ over a 64 KiB path", "local S = ...; return collect(S.gmatch(H, P), 100000)",
       path, "[^/]+"},
      {"find needle, plain", "local S = ...; return S.find(H, P, 1, true)", needle, "needle"},
      {"find needle, pattern", "local S = ...; return S.find(H, P)", needle, "needle$"},
      {"gmatch (%w+)=(%w+)", "local S = ...; return collect(S.gmatch(H, P), 100000)", query,
       "(%w+)=(%w+)"},
      {"gsub %f[%w]%w+ (function)",
       "local S = ...; return S.gsub(H, P, function(w) return #w end)", text, "%f[%w]%w+"},
      {"gsub %s+ (string)", "local S = ...; return S.gsub(H, P, ' ')", text, "%s+"},
      {"gsub (%w+) (table)", "local S = ...; return S.gsub(H, P, {lorem = 'L'})", text, "(%w+)"},
      {"match ^Bearer%s+(.+)$", "local S = ...; return S.match(H, P)", bearer, "^Bearer%s+(.+)$"},
      {"match ^%s*(.-)%s*$ (trim)", "local S = ...; return S.match(H, P)", text,
       "^%s*(.-)%s*$"},
      {"find %b()", "local S = ...; return S.find(H, P)", nested, "%b()"},
      {"match ^/v1/(.*)$", "local S = ...; return S.match(H, P)", path, "^/segment/(.*)$"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    double t = timed_run(cases[c].code, "MINE", cases[c].subject, n, cases[c].pattern);
    const char *mine = lua_tostring(L, -1);
    timed_run(cases[c].code, "string", cases[c].subject, n, cases[c].pattern);
    const char *real = lua_tostring(L, -1);
    int ok = strncmp(mine, "ok ", 3) == 0;
    size_t steps = ok ? steps_needed(cases[c].code, cases[c].subject, n, cases[c].pattern) : 0;
    printf("  benign %-36s %7.3f s  %s, needs %zu steps\n", cases[c].name, t,
           ok ? "ok" : "ERROR", steps);
    if (!ok)
      fail(cases[c].name, mine);
    else if (strcmp(mine, real) != 0)
      fail(cases[c].name, "differs from the real library");
    else
      passed++;
    lua_pop(L, 2);
  }
  free(key);
  free(path);
  free(query);
  free(text);
  free(bearer);
  free(needle);
  free(nested);
}

// The budget itself: its message, 0 = unlimited, one budget for all of a gsub.
static void run_budget_checks(void) {
  size_t saved = gh_pattern_step_limit;
  char *as = repeat("a", 300);

  gh_pattern_step_limit = 100;
  timed_run("local S = ...; return S.find(H, P)", "MINE", as, 300, "a-b");
  const char *expect = "error \"hostile:1: string.find: pattern too costly (more than 100 "
                       "matching steps on a 300-byte string); make the pattern more specific or "
                       "match a shorter string\"";
  if (strcmp(lua_tostring(L, -1), expect) != 0)
    fail("budget message", lua_tostring(L, -1));
  else
    passed++;
  lua_pop(L, 1);

  // gsub: each match is cheap, but all of them together are not.
  char *big = repeat("a", 65536);
  gh_pattern_step_limit = 100000;
  timed_run("local S = ...; return S.gsub(H, P, 'b')", "MINE", big, 65536, "a");
  if (strstr(lua_tostring(L, -1), "string.gsub: pattern too costly") == NULL)
    fail("gsub has one budget for all its matches", lua_tostring(L, -1));
  else
    passed++;
  lua_pop(L, 1);
  // gmatch: the budget is per iterator call, so the same loop succeeds.
  timed_run("local S = ...; local n = 0; for _ in S.gmatch(H, P) do n = n + 1 end; return n",
            "MINE", big, 65536, "a");
  if (strcmp(lua_tostring(L, -1), "ok 1:i65536") != 0)
    fail("gmatch budget is per iterator call", lua_tostring(L, -1));
  else
    passed++;
  lua_pop(L, 1);

  // 0 = unlimited: a search needing some 46 million steps (650^3 / 6) gives the real
  // library's result.
  gh_pattern_step_limit = 0;
  char *a650 = repeat("a", 650);
  timed_run("local S = ...; return S.find(H, P)", "MINE", a650, 650, "a-a-b");
  lua_pushstring(L, lua_tostring(L, -1));
  lua_remove(L, -2);
  timed_run("local S = ...; return S.find(H, P)", "string", a650, 650, "a-a-b");
  if (strcmp(lua_tostring(L, -1), lua_tostring(L, -2)) != 0 ||
      strcmp(lua_tostring(L, -1), "ok 1:nil") != 0)
    fail("limit 0 is unlimited", lua_tostring(L, -2));
  else
    passed++;
  lua_pop(L, 2);

  gh_pattern_step_limit = saved;
  free(as);
  free(big);
  free(a650);
}

int main(int argc, char **argv) {
  long random_count = argc > 1 ? atol(argv[1]) : 200000;
  const char *verbose = getenv("PATTERN_DIFF_VERBOSE");
  L = luaL_newstate();
  luaL_openlibs(L);
  lua_register(L, "gh_find", gh_str_find);
  lua_register(L, "gh_match", gh_str_match);
  lua_register(L, "gh_gmatch", gh_str_gmatch);
  lua_register(L, "gh_gsub", gh_str_gsub);
  if (luaL_dostring(L, HARNESS) != LUA_OK) {
    printf("harness does not load: %s\n0 passed, 1 failed\n", lua_tostring(L, -1));
    return 1;
  }

  run_corpus(verbose != NULL && *verbose == '1');
  run_random(random_count);
  printf("hostile shapes (step limit %zu):\n", gh_pattern_step_limit);
  run_hostile();
  printf("worst hostile case: %s, %.3f s of CPU\n", worst_case, worst_time);
  printf("benign 64 KiB corpus:\n");
  run_benign();
  run_budget_checks();

  lua_close(L);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
