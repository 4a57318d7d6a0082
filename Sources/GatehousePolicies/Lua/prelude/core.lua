-- gatehouse/core.lua: the handles behind every policy-facing object, and the helpers every later
-- chunk shares through `internal`.
--
-- Policy-facing objects (request, context, headers, responses) are empty tables whose
-- metatables call the host. The request handle (rid) an object stands for lives in the weak side
-- tables below, which plugin code cannot reach, so a policy cannot forge a handle to another
-- request. `live` and `objects` are also read by Swift (it clears a request's entries when the
-- request ends). Also defined here: the result codes the drivers return to Swift, the registry
-- of read-only views (filled by sandbox.lua) and `plain`, which hands the host tables it can
-- read (host functions read tables raw, where a view looks empty).
local host, internal = ...
local setmetatable, type, error, next, pcall, tostring = setmetatable, type, error, next, pcall, tostring

-- What a driver returns to Swift (mirrored there): a positive k means "answer with response k"
-- (an index into the request's responses).
internal.RESULT = {
  CONTINUE = 0,     -- inbound: the request goes on; loader: the loaded value follows
  INVALID = -1,     -- the function returned something else; its type follows
  LOAD_FAILED = -2, -- a loader's load function failed; the message follows
}

local live = {}                                     -- rid -> true while its request runs
local objects = {}                                  -- rid -> per-request Lua state
local rid_of = setmetatable({}, { __mode = "k" })   -- object -> rid
local kind_of = setmetatable({}, { __mode = "k" })  -- object -> "request" | "context" | "headers" | "response"
local index_of = setmetatable({}, { __mode = "k" }) -- headers/response object -> message index (0 = request)

-- The rid of `obj`, raising at the caller's `level` when it is not a live object of `kind`.
local function check(obj, kind, level)
  local rid = rid_of[obj]
  if rid == nil or kind_of[obj] ~= kind then
    error("expected a " .. kind .. " object (did you write '.' instead of ':'?)", level + 1)
  end
  if not live[rid] then error(kind .. " used after its request ended", level + 1) end
  return rid
end

local function register(obj, rid, kind, index)
  rid_of[obj] = rid; kind_of[obj] = kind; index_of[obj] = index
  return obj
end

-- Read-only view -> the table behind it (views are made in sandbox.lua).
local view_target = setmetatable({}, { __mode = "k" })

-- `v` as the host can read it: itself when no view is reachable from it, else a copy in which
-- every view is replaced by (a copy of) the table behind it. Cycles and shared subtables are
-- visited once; a cycle is left for the host to report (it refuses nesting over 64 levels).
local MAX_DEPTH = 64
local function convert(t, memo, depth)
  local source = view_target[t] or t
  local done = memo[source]
  if done ~= nil then return done end
  if depth > MAX_DEPTH then return source end
  memo[source] = source -- in progress: a cycle back to it keeps the original
  local copy = nil
  for k, v in next, source do
    if type(v) == "table" then
      local c = convert(v, memo, depth + 1)
      if c ~= v then
        if copy == nil then
          copy = {}
          for k2, v2 in next, source do copy[k2] = v2 end
        end
        copy[k] = c
      end
    end
  end
  local result = copy or source
  memo[source] = result
  return result
end
local function plain(v)
  if type(v) ~= "table" then return v end
  if view_target[v] == nil then
    -- The common case, a flat table of the policy's own: nothing to convert, nothing allocated.
    local nested = false
    for _, x in next, v do
      if type(x) == "table" then nested = true; break end
    end
    if not nested then return v end
  end
  return convert(v, {}, 1)
end

-- `v` as text, as the host used to show non-strings: tostring (which runs __tostring), or
-- "(<type> value)" when that fails. Run here, in Lua, so a host function never runs Lua code.
local function display(v)
  if type(v) == "string" then return v end
  local ok, text = pcall(tostring, v)
  if ok and type(text) == "string" then return text end
  return "(" .. type(v) .. " value)"
end

-- json.encode with its error raised at the caller's `level`, naming the policy's line.
local json_encode = host.json_encode
local function encode(value, level)
  local ok, text = pcall(json_encode, plain(value))
  if not ok then error(text, level + 1) end
  return text
end

internal.live = live
internal.objects = objects
internal.rid_of = rid_of
internal.kind_of = kind_of
internal.index_of = index_of
internal.check = check
internal.register = register
internal.view_target = view_target
internal.plain = plain
internal.display = display
internal.encode = encode
