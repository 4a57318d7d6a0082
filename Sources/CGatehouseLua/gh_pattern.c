#define _GNU_SOURCE // memmem
// Lua 5.4 pattern matching (manual §6.4.1) under a step budget.
//
// Why this exists: Lua's matcher backtracks, so a short pattern can take exponential or
// high-polynomial time (`string.find(string.rep('a', 300), 'a-a-a-a-b')` runs for minutes).
// Our instruction-count hook cannot stop it: hooks only run between VM instructions, and the
// whole match happens inside one C call. So the matcher itself has to count its work.
//
// The step budget: each call of find/match/gsub, and each call of a gmatch iterator, may take
// at most `gh_pattern_step_limit` steps (0 = unlimited); one more raises "pattern too costly".
// A step is:
//   - one entry into the recursive matcher (match_here), which also covers each start
//     position tried by find/match/gmatch/gsub;
//   - one test of a subject byte against a pattern item (a literal, `.`, a class, a set),
//     wherever it happens: in a plain item sequence or in a `*` `+` `-` `?` repetition loop;
//     a set longer than 16 bytes costs one more step per 16 bytes, since it is scanned;
//   - one per subject byte scanned by `%b`, compared by a back-reference `%1`, or tested by
//     the two set tests of `%f`.
// Every loop in the matcher pays at least one step per iteration, so the budget bounds the
// total work (and so the CPU time) whatever the pattern's shape. gsub has one budget for all
// its matches together. Recursion depth is bounded separately, as Lua does (200 levels,
// "pattern too complex"), so the C stack is bounded too.
//
// Behaviour (results, errors and their messages) is that of Lua 5.4.4's string library;
// Tests/CPattern/pattern_diff.c checks that against the real one. Plain find (4th argument
// true, or a pattern without special characters) is a substring search that needs no budget:
// glibc's memmem, linear in the subject.
#include "gh_pattern.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

size_t gh_pattern_step_limit = 10000000;

#define GH_MAX_CAPTURES 32 // LUA_MAXCAPTURES
#define GH_MAX_DEPTH 200   // MAXCCALLS in Lua's string library
#define GH_ESC '%'

// A capture's `len` is its length once closed, or one of these.
#define GH_CAP_OPEN (-1)
#define GH_CAP_POSITION (-2)

typedef struct {
  lua_State *L;
  const char *fname; // "string.find" etc., for the budget error
  const char *src;   // the whole subject (position captures count from here)
  const char *src_end;
  const char *pat_end;
  int depth_left; // recursion levels left before "pattern too complex"
  int ncap;       // captures opened so far in this attempt
  size_t steps_left;
  size_t limit; // the budget this call started with (for the message); 0 = unlimited
  struct {
    const char *init;
    ptrdiff_t len;
  } cap[GH_MAX_CAPTURES];
} gh_matcher;

static void matcher_init(gh_matcher *m, lua_State *L, const char *fname, const char *s,
                         size_t ls, const char *p, size_t lp) {
  m->L = L;
  m->fname = fname;
  m->src = s;
  m->src_end = s + ls;
  m->pat_end = p + lp;
  m->depth_left = GH_MAX_DEPTH;
  m->ncap = 0;
}

// Starts the budget of one API call (gsub: of all its matches).
static void budget_start(gh_matcher *m) {
  m->limit = gh_pattern_step_limit;
  m->steps_left = m->limit == 0 ? SIZE_MAX : m->limit;
}

// Resets what one match attempt (at one start position) may have left behind. The depth is
// reset too: a raised error skips the increments on the way out.
static void attempt_start(gh_matcher *m) {
  m->ncap = 0;
  m->depth_left = GH_MAX_DEPTH;
}

static void too_costly(gh_matcher *m) {
  luaL_error(m->L,
             "%s: pattern too costly (more than %I matching steps on a %I-byte string); "
             "make the pattern more specific or match a shorter string",
             m->fname, (lua_Integer)m->limit, (lua_Integer)(m->src_end - m->src));
}

static inline void charge(gh_matcher *m, size_t steps) {
  if (steps > m->steps_left)
    too_costly(m);
  m->steps_left -= steps;
}

// MARK: Single items

// Does byte `c` belong to class letter `cl` (the letter after '%')? An upper-case class letter
// is the complement; any other character stands for itself. 'z' (NUL) is deprecated but still
// accepted by Lua 5.4.
static int class_matches(int c, int cl) {
  int in;
  switch (tolower(cl)) {
  case 'a': in = isalpha(c); break;
  case 'c': in = iscntrl(c); break;
  case 'd': in = isdigit(c); break;
  case 'g': in = isgraph(c); break;
  case 'l': in = islower(c); break;
  case 'p': in = ispunct(c); break;
  case 's': in = isspace(c); break;
  case 'u': in = isupper(c); break;
  case 'w': in = isalnum(c); break;
  case 'x': in = isxdigit(c); break;
  case 'z': in = (c == 0); break;
  default: return cl == c;
  }
  if (isupper(cl))
    in = !in;
  return in != 0;
}

// The end of the single item starting at p (p < pat_end): past "%x", past "[...]", or p + 1.
// In a set, the first byte (after an optional '^') is never the closing ']', and "%]" is an
// escaped ']'.
static const char *item_end(gh_matcher *m, const char *p) {
  char c = *p++;
  if (c == GH_ESC) {
    if (p == m->pat_end)
      luaL_error(m->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < m->pat_end && *p == '^')
      p++;
    do {
      if (p == m->pat_end)
        luaL_error(m->L, "malformed pattern (missing ']')");
      c = *p++;
      if (c == GH_ESC && p < m->pat_end)
        p++;
    } while (p == m->pat_end || *p != ']');
    return p + 1;
  }
  return p;
}

// Is byte c in the set from '[' at `open` to ']' at `close`? Elements are "%x" classes,
// ranges "a-z" (a '-' first or last is literal) and single bytes.
static int set_matches(int c, const char *open, const char *close) {
  int in_result = 1; // what to return when c is among the elements
  const char *p = open + 1;
  if (*p == '^') {
    in_result = 0;
    p++;
  }
  for (; p < close; p++) {
    if (*p == GH_ESC) {
      p++;
      if (class_matches(c, (unsigned char)*p))
        return in_result;
    } else if (p[1] == '-' && p + 2 < close) {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
        return in_result;
      p += 2;
    } else if ((unsigned char)*p == c) {
      return in_result;
    }
  }
  return !in_result;
}

static size_t set_cost(const char *open, const char *close) {
  return 1 + (size_t)(close - open) / 16;
}

// Does the subject byte at s match the single item [p, ep)? Charges its steps.
static int single_matches(gh_matcher *m, const char *s, const char *p, const char *ep) {
  if (*p == '[') {
    charge(m, set_cost(p, ep - 1));
    return s < m->src_end && set_matches((unsigned char)*s, p, ep - 1);
  }
  charge(m, 1);
  if (s >= m->src_end)
    return 0;
  switch (*p) {
  case '.': return 1;
  case GH_ESC: return class_matches((unsigned char)*s, (unsigned char)p[1]);
  default: return *p == *s;
  }
}

// MARK: The matcher

static const char *match_here(gh_matcher *m, const char *s, const char *p);

// "%bxy" with p at x: a balanced run from x to its matching y, or NULL.
static const char *match_balance(gh_matcher *m, const char *s, const char *p) {
  if (p + 1 >= m->pat_end)
    luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
  charge(m, 1);
  if (s >= m->src_end || *s != p[0])
    return NULL;
  char opener = p[0], closer = p[1];
  int depth = 1;
  while (++s < m->src_end) {
    charge(m, 1);
    // The closing byte is tested first, so "%baa" ends at the next 'a'.
    if (*s == closer) {
      if (--depth == 0)
        return s + 1;
    } else if (*s == opener) {
      depth++;
    }
  }
  return NULL;
}

// "%1".."%9" (digit d): the text of capture d again, or NULL. A position capture never matches.
static const char *match_backref(gh_matcher *m, const char *s, char d) {
  int i = d - '1';
  if (i < 0 || i >= m->ncap || m->cap[i].len == GH_CAP_OPEN)
    luaL_error(m->L, "invalid capture index %%%d", i + 1);
  ptrdiff_t len = m->cap[i].len;
  charge(m, 1);
  if (len < 0 || m->src_end - s < len)
    return NULL;
  charge(m, (size_t)len); // the bytes memcmp may compare
  return memcmp(m->cap[i].init, s, (size_t)len) == 0 ? s + len : NULL;
}

static const char *open_capture(gh_matcher *m, const char *s, const char *p, ptrdiff_t what) {
  if (m->ncap >= GH_MAX_CAPTURES)
    luaL_error(m->L, "too many captures");
  int i = m->ncap++;
  m->cap[i].init = s;
  m->cap[i].len = what;
  const char *e = match_here(m, s, p);
  if (e == NULL)
    m->ncap--; // backtrack: the capture was never opened
  return e;
}

static const char *close_capture(gh_matcher *m, const char *s, const char *p) {
  int i = m->ncap - 1;
  while (i >= 0 && m->cap[i].len != GH_CAP_OPEN)
    i--;
  if (i < 0) {
    luaL_error(m->L, "invalid pattern capture");
    return NULL;
  }
  m->cap[i].len = s - m->cap[i].init;
  const char *e = match_here(m, s, p);
  if (e == NULL)
    m->cap[i].len = GH_CAP_OPEN; // backtrack: reopen it
  return e;
}

// Item [p, ep) repeated greedily from s, then the rest of the pattern after the quantifier.
static const char *match_greedy(gh_matcher *m, const char *s, const char *p, const char *ep) {
  size_t n = 0;
  while (single_matches(m, s + n, p, ep))
    n++;
  for (;;) { // longest first, giving back one byte at a time
    const char *e = match_here(m, s + n, ep + 1);
    if (e != NULL)
      return e;
    if (n == 0)
      return NULL;
    n--;
  }
}

// Item [p, ep) repeated lazily ('-'): the shortest run for which the rest matches.
static const char *match_lazy(gh_matcher *m, const char *s, const char *p, const char *ep) {
  for (;;) {
    const char *e = match_here(m, s, ep + 1);
    if (e != NULL)
      return e;
    if (!single_matches(m, s, p, ep))
      return NULL;
    s++;
  }
}

// Matches pattern [p, pat_end) at s; returns the end of the match or NULL. Captures are
// recorded in m. Tail positions loop instead of recursing; every recursion is a point where
// backtracking may come back, and those are what the depth limit counts.
static const char *match_items(gh_matcher *m, const char *s, const char *p) {
  const char *pat_end = m->pat_end;
  while (p != pat_end) {
    switch (*p) {
    case '(':
      if (p + 1 < pat_end && p[1] == ')')
        return open_capture(m, s, p + 2, GH_CAP_POSITION);
      return open_capture(m, s, p + 1, GH_CAP_OPEN);
    case ')':
      return close_capture(m, s, p + 1);
    case '$':
      if (p + 1 == pat_end) // only last is it an anchor; elsewhere a literal '$'
        return s == m->src_end ? s : NULL;
      break;
    case GH_ESC:
      if (p + 1 == pat_end)
        break; // item_end reports the malformed pattern
      if (p[1] == 'b') {
        s = match_balance(m, s, p + 2);
        if (s == NULL)
          return NULL;
        p += 4;
        continue;
      }
      if (p[1] == 'f') { // frontier: previous byte not in the set, this one in it
        p += 2;
        if (p == pat_end || *p != '[')
          luaL_error(m->L, "missing '[' after '%%f' in pattern");
        const char *ep = item_end(m, p);
        int prev = s == m->src ? 0 : (unsigned char)s[-1];
        int cur = s < m->src_end ? (unsigned char)*s : 0; // the subject's end reads as NUL
        charge(m, 2 * set_cost(p, ep - 1));
        if (set_matches(prev, p, ep - 1) || !set_matches(cur, p, ep - 1))
          return NULL;
        p = ep;
        continue;
      }
      if (isdigit((unsigned char)p[1])) {
        s = match_backref(m, s, p[1]);
        if (s == NULL)
          return NULL;
        p += 2;
        continue;
      }
      break; // a class or an escaped character: a single item
    default:
      break;
    }

    // A single item, perhaps followed by a quantifier.
    const char *ep = item_end(m, p);
    char quant = ep < pat_end ? *ep : '\0';
    if (!single_matches(m, s, p, ep)) {
      if (quant == '*' || quant == '?' || quant == '-') { // zero repetitions are fine
        p = ep + 1;
        continue;
      }
      return NULL;
    }
    switch (quant) {
    case '?': {
      const char *e = match_here(m, s + 1, ep + 1);
      if (e != NULL)
        return e;
      p = ep + 1; // the item absent
      continue;
    }
    case '+': return match_greedy(m, s + 1, p, ep);
    case '*': return match_greedy(m, s, p, ep);
    case '-': return match_lazy(m, s, p, ep);
    default:
      s++;
      p = ep;
      continue;
    }
  }
  return s;
}

static const char *match_here(gh_matcher *m, const char *s, const char *p) {
  if (m->depth_left-- == 0)
    luaL_error(m->L, "pattern too complex");
  charge(m, 1);
  const char *e = match_items(m, s, p);
  m->depth_left++;
  return e;
}

// MARK: Captures to Lua values

// Capture i of a match [s, e): its start and length, or for a position capture
// GH_CAP_POSITION with the position pushed. With no captures, "capture 0" is the whole match.
static ptrdiff_t get_capture(gh_matcher *m, int i, const char *s, const char *e,
                             const char **start) {
  if (i >= m->ncap) {
    if (i != 0)
      luaL_error(m->L, "invalid capture index %%%d", i + 1);
    *start = s;
    return e - s;
  }
  ptrdiff_t len = m->cap[i].len;
  *start = m->cap[i].init;
  if (len == GH_CAP_OPEN)
    luaL_error(m->L, "unfinished capture");
  if (len == GH_CAP_POSITION)
    lua_pushinteger(m->L, (lua_Integer)(m->cap[i].init - m->src) + 1);
  return len;
}

static void push_capture(gh_matcher *m, int i, const char *s, const char *e) {
  const char *start;
  ptrdiff_t len = get_capture(m, i, s, e, &start);
  if (len != GH_CAP_POSITION)
    lua_pushlstring(m->L, start, (size_t)len);
}

// Pushes all captures (or the whole match [s, e) when there are none and s is not NULL).
static int push_captures(gh_matcher *m, const char *s, const char *e) {
  int n = (m->ncap == 0 && s != NULL) ? 1 : m->ncap;
  luaL_checkstack(m->L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(m, i, s, e);
  return n;
}

// MARK: find / match

// A 1-based, possibly negative string position, as a 1-based index clipped below at 1.
static size_t start_position(lua_Integer pos, size_t len) {
  if (pos > 0)
    return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len)
    return 1;
  return len + (size_t)pos + 1;
}

static int has_specials(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++) {
    switch (p[i]) {
    case '^': case '$': case '*': case '+': case '?': case '.': case '(': case '[':
    case '%': case '-':
      return 1;
    default:
      break;
    }
  }
  return 0;
}

// First occurrence of [p, p + lp) in [s, s + ls), or NULL. The empty string is found at s.
static const char *plain_search(const char *s, size_t ls, const char *p, size_t lp) {
  // glibc's memmem is linear in the subject (two-way search for longer needles), where a
  // memchr + memcmp scan is quadratic on inputs like a long run of 'a' searched for "aa...ab".
  if (lp == 0)
    return s;
  return (const char *)memmem(s, ls, p, lp);
}

static int find_or_match(lua_State *L, int find, const char *fname) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) { // starts after the end: nothing can match, not even ""
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    const char *hit = plain_search(s + init, ls - init, p, lp);
    if (hit != NULL) {
      lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
      lua_pushinteger(L, (lua_Integer)(hit - s + lp));
      return 2;
    }
  } else {
    gh_matcher m;
    int anchored = lp > 0 && *p == '^';
    if (anchored) {
      p++;
      lp--;
    }
    matcher_init(&m, L, fname, s, ls, p, lp);
    budget_start(&m);
    const char *s1 = s + init;
    for (;;) {
      attempt_start(&m);
      const char *e = match_here(&m, s1, p);
      if (e != NULL) {
        if (!find)
          return push_captures(&m, s1, e);
        lua_pushinteger(L, (lua_Integer)(s1 - s) + 1);
        lua_pushinteger(L, (lua_Integer)(e - s));
        return push_captures(&m, NULL, NULL) + 2;
      }
      if (anchored || s1 >= m.src_end)
        break;
      s1++;
    }
  }
  luaL_pushfail(L);
  return 1;
}

int gh_str_find(lua_State *L) { return find_or_match(L, 1, "string.find"); }

int gh_str_match(lua_State *L) { return find_or_match(L, 0, "string.match"); }

// MARK: gmatch

// The iterator's state, a userdata upvalue beside the subject and the pattern (upvalues 1
// and 2, which keep the strings m points into alive). '^' is not an anchor in gmatch.
typedef struct {
  gh_matcher m;
  const char *pat;
  size_t next;      // offset where the next search starts (len + 1: exhausted)
  size_t last_end;  // offset where the last match ended, SIZE_MAX before the first
} gh_gmatch_state;

static int gmatch_next(lua_State *L) {
  gh_gmatch_state *st = (gh_gmatch_state *)lua_touserdata(L, lua_upvalueindex(3));
  gh_matcher *m = &st->m;
  size_t len = (size_t)(m->src_end - m->src);
  m->L = L; // the iterator may be called from another coroutine than gmatch was
  budget_start(m);
  for (size_t off = st->next; off <= len; off++) {
    attempt_start(m);
    const char *e = match_here(m, m->src + off, st->pat);
    // A match ending where the previous one ended (an empty match right after it) does not
    // count: the 5.4 rule, so "x*" over "abc" yields four empty matches and "a*" over "aab"
    // yields "aa" then "" only at the end.
    if (e != NULL && (size_t)(e - m->src) != st->last_end) {
      st->next = st->last_end = (size_t)(e - m->src);
      return push_captures(m, m->src + off, e);
    }
  }
  return 0;
}

int gh_str_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2);
  gh_gmatch_state *st = (gh_gmatch_state *)lua_newuserdatauv(L, sizeof *st, 0);
  if (init > ls)
    init = ls + 1; // past the end: the iterator finds nothing
  matcher_init(&st->m, L, "string.gmatch", s, ls, p, lp);
  st->pat = p;
  st->next = init;
  st->last_end = SIZE_MAX;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

// MARK: gsub

// Appends replacement string `repl` for the match [s, e): "%0" the match, "%1".."%9" the
// captures, "%%" a '%'.
static void add_repl_string(gh_matcher *m, luaL_Buffer *b, const char *repl, size_t lr,
                            const char *s, const char *e) {
  const char *end = repl + lr;
  const char *esc;
  while ((esc = memchr(repl, GH_ESC, (size_t)(end - repl))) != NULL) {
    luaL_addlstring(b, repl, (size_t)(esc - repl));
    // Lua strings end with a NUL, so a '%' last reads NUL here: an invalid use, like Lua.
    char c = esc[1];
    if (c == GH_ESC) {
      luaL_addchar(b, GH_ESC);
    } else if (c == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit((unsigned char)c)) {
      const char *start;
      ptrdiff_t len = get_capture(m, c - '1', s, e, &start);
      if (len == GH_CAP_POSITION)
        luaL_addvalue(b); // the position get_capture pushed
      else
        luaL_addlstring(b, start, (size_t)len);
    } else {
      luaL_error(m->L, "invalid use of '%c' in replacement string", GH_ESC);
    }
    repl = esc + 2;
  }
  luaL_addlstring(b, repl, (size_t)(end - repl));
}

// Appends the replacement of match [s, e) per the type of argument 3. Returns whether the
// output differs from the match (a false/nil from a table or function keeps the match).
static int add_replacement(gh_matcher *m, luaL_Buffer *b, const char *s, const char *e,
                           int repl_type, const char *repl, size_t lr) {
  lua_State *L = m->L;
  if (repl_type == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(m, s, e);
    lua_call(L, n, 1);
  } else if (repl_type == LUA_TTABLE) {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_repl_string(m, b, repl, lr, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

int gh_str_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int repl_type = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L, repl_type == LUA_TNUMBER || repl_type == LUA_TSTRING ||
                          repl_type == LUA_TFUNCTION || repl_type == LUA_TTABLE,
                   3, "string/function/table");
  const char *repl = NULL;
  size_t lr = 0;
  if (repl_type == LUA_TNUMBER || repl_type == LUA_TSTRING)
    repl = lua_tolstring(L, 3, &lr);
  int anchored = lp > 0 && *p == '^';
  if (anchored) {
    p++;
    lp--;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  gh_matcher m;
  matcher_init(&m, L, "string.gsub", src, ls, p, lp);
  budget_start(&m); // one budget for the whole call, not per match
  const char *last_end = NULL;
  lua_Integer n = 0;
  int changed = 0;
  while (n < max_n) {
    attempt_start(&m);
    const char *e = match_here(&m, src, p);
    if (e != NULL && e != last_end) { // an empty match where the last one ended is skipped
      n++;
      changed |= add_replacement(&m, &b, src, e, repl_type, repl, lr);
      src = last_end = e;
    } else if (src < m.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchored)
      break;
  }
  if (!changed) {
    lua_pushvalue(L, 1); // nothing replaced: the original string itself
  } else {
    luaL_addlstring(&b, src, (size_t)(m.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}
