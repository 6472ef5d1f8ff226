-- Argo CD health of the mcpyard kinds (Workspace, MCPServer, Member, EncryptedSecret), read
-- from their Ready condition. Argo CD runs this for each object, as `obj`, and shows `hs`.
-- It is the same script for the four kinds: argocd-cm.yaml embeds it once per kind.
local hs = {}
local status = obj.status
local generation = obj.metadata ~= nil and obj.metadata.generation or nil

if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the mcpyard operator to report status"
  return hs
end

-- A status written for an older spec says nothing about the current one.
if generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

local ready = nil
for _, condition in ipairs(status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "No Ready condition yet"
  return hs
end

local message = ready.message
if message == nil or message == "" then
  message = ready.reason or ""
end

if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  if ready.reason == "Pending" or ready.reason == "DependenciesNotReady" then
    -- Still converging: a hosted server starting, a secret not applied yet.
    hs.status = "Progressing"
  elseif ready.reason == "Disabled" or ready.reason == "Expired" then
    -- A member switched off in git (disabled: true, or its expires passed): that is the
    -- declared state, not a failure; the message says which.
    hs.status = "Healthy"
  else
    hs.status = "Degraded"
  end
else
  hs.status = "Progressing"
end
hs.message = message
return hs
