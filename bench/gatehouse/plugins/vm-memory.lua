-- Reports the Lua memory of the VM that serves this connection (the benchmark reads it).
return function()
  return Response.json({ kilobytes = collectgarbage("count") })
end
