-- Runs an Argo CD health script the way Argo CD does (util/lua/lua.go): the object as the
-- global `obj`, only the base, table and package libraries visible (no string, math, io,
-- os; strings have no methods), JSON null as nil. Prints the returned table as JSON.
-- usage: lua5.1 sandbox.lua OBJECT.json health.lua
local cjson = require("cjson")

local function denull(value)
  if value == cjson.null then
    return nil
  end
  if type(value) == "table" then
    local out = {}
    for k, v in pairs(value) do
      out[k] = denull(v)
    end
    return out
  end
  return value
end

local file = assert(io.open(arg[1], "r"))
local obj = denull(cjson.decode(file:read("*a")))
file:close()
local chunk = assert(loadfile(arg[2]))

local env = {}
for _, name in ipairs({
  "assert", "collectgarbage", "dofile", "error", "getfenv", "getmetatable", "ipairs", "load",
  "loadfile", "loadstring", "module", "newproxy", "next", "pairs", "pcall", "print", "rawequal",
  "rawget", "rawset", "require", "select", "setfenv", "setmetatable", "tonumber", "tostring",
  "type", "unpack", "xpcall", "_VERSION",
}) do
  env[name] = _G[name]
end
env.table = table
env.package = package
env._G = env
env.obj = obj
setfenv(chunk, env)

-- gopher-lua without its string library gives strings no methods ("x"):len() fails there.
local stringMeta = getmetatable("")
local stringIndex = stringMeta.__index
stringMeta.__index = nil
local ok, result = pcall(chunk)
stringMeta.__index = stringIndex

if not ok then
  io.stderr:write("health script failed: " .. tostring(result) .. "\n")
  os.exit(1)
end
if type(result) ~= "table" then
  io.stderr:write("health script returned " .. type(result) .. ", not a table\n")
  os.exit(1)
end
io.write(cjson.encode({ status = result.status, message = result.message }), "\n")
