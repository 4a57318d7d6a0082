-- transformPath functions for upstreams.json. Each gets the path after the route name (with its
-- leading "/", the matched routeByPath key included) and returns the path to put after the
-- rule's pathPrefix.
return {
  -- /legacy/orders/7 → /orders/7
  dropLegacySegment = function(path)
    return (path:gsub("^/legacy", "", 1))
  end,
}
