-- gatehouse/problems.lua: the `problems` namespace, RFC 9457 problem responses.
--
-- `problems.<name>(request, context, fields)` (or just `(fields)`) makes a problem response with
-- the status its name says; `problems.status(code, ...)` takes any 4xx/5xx. A non-nil `detail`
-- is turned into text here, in Lua, so the host never runs a __tostring metamethod.
local host, internal = ...
local type, error, pairs = type, error, pairs
local kind_of, response_obj, display = internal.kind_of, internal.response_obj, internal.display

local problems = {}
local function problem(status)
  return function(request, context, fields)
    if fields == nil and type(request) == "table" and kind_of[request] == nil then fields = request end
    fields = fields or {}
    if type(fields) ~= "table" then error("problem fields must be a table {detail=, title=, type=}", 2) end
    local detail = fields.detail
    if detail ~= nil then detail = display(detail) end
    local rid, index = host.problem_new(status, detail, fields.title, fields.type)
    return response_obj(rid, index)
  end
end
local statuses = {
  badRequest = 400, unauthorized = 401, paymentRequired = 402, forbidden = 403, notFound = 404,
  methodNotAllowed = 405, notAcceptable = 406, conflict = 409, gone = 410, payloadTooLarge = 413,
  unsupportedMediaType = 415, unprocessableContent = 422, tooManyRequests = 429,
  internalServerError = 500, notImplemented = 501, badGateway = 502, serviceUnavailable = 503,
  gatewayTimeout = 504,
}
for name, status in pairs(statuses) do problems[name] = problem(status) end
function problems.status(status, request, context, fields) return problem(status)(request, context, fields) end

internal.problems = problems
