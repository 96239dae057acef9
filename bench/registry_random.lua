-- wrk script: registry reads against random models of the seeded registry
-- (load_registry.py's data: model-0 .. model-(MODELS-1), alias champion).
-- usage: wrk -s registry_random.lua URI -- KIND MODELS   (KIND: alias | download-uri)
local kind, models = "alias", 10000
function init(args)
  kind = args[1] or kind
  models = tonumber(args[2] or models)
  math.randomseed(os.time() + math.random(1000))
end
function request()
  local i = math.random(0, models - 1)
  local path
  if kind == "alias" then
    path = "/api/2.0/mlflow/registered-models/alias?name=model-" .. i .. "&alias=champion"
  else
    path = "/api/2.0/mlflow/model-versions/get-download-uri?name=model-" .. i .. "&version=" .. math.random(1, 10)
  end
  return wrk.format("GET", path)
end
