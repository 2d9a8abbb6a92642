-- Argo CD health check for hubmirror.dev/MirrorJob.
-- Install: argocd-cm key resource.customizations.health.hubmirror.dev_MirrorJob (see README.md).
-- Runs in Argo CD's restricted Lua 5.1 sandbox: base and table libraries only (no string,
-- no math, no goto). Follows kstatus, then the MirrorJob's own states:
--   status missing / being deleted / observedGeneration behind  -> Progressing
--   Stalled=True (invalid spec, failed preflight)               -> Degraded
--   Reconciling=True (a run, its verification, the cluster's
--     rollout of what was applied, or a due run waiting for a
--     run slot: phase Queued)                                   -> Progressing
--   status.pendingChange (waits for spec.apply.approvedChange)  -> Suspended
--   status.pendingPrune (Pruned AwaitingPruneApproval: waits
--   for spec.prune.approvedPlan)                                -> Suspended
--   spec.suspend / phase Suspended                              -> Suspended
--   Pruned PruneFailed / PruneRefused (a registry prune gave
--   up, or would have deleted everything)                       -> Degraded
--   Ready=True                                                  -> Healthy
--   Ready not True and phase Failed (last run failed, missing
--   or mismatched images, not applied, a MachineConfigPool
--   degraded or a rollout stuck past its deadline)              -> Degraded
--   otherwise (no run finished yet)                             -> Progressing

local function condition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = ""
  if c.reason ~= nil and c.reason ~= "" then
    text = c.reason
  end
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. c.message
  end
  return text
end

local function health(obj)
  local status = obj.status
  local spec = obj.spec or {}
  local metadata = obj.metadata or {}

  if metadata.deletionTimestamp ~= nil then
    return { status = "Progressing", message = "Deleting: cleaning up what the MirrorJob applied" }
  end
  if status == nil then
    return { status = "Progressing", message = "Waiting for the operator to report status" }
  end
  if metadata.generation ~= nil and status.observedGeneration ~= nil
      and status.observedGeneration < metadata.generation then
    return {
      status = "Progressing",
      message = "Waiting for the operator to observe generation " .. metadata.generation
        .. " (status is for generation " .. status.observedGeneration .. ")",
    }
  end

  local conditions = status.conditions
  local stalled = condition(conditions, "Stalled")
  if stalled ~= nil and stalled.status == "True" then
    -- A failed preflight names its cause (RegistryUnreachable, SecretNotFound, ...) in PreflightPassed.
    local preflight = condition(conditions, "PreflightPassed")
    if stalled.reason == "PreflightFailed" and preflight ~= nil and preflight.status == "False" then
      return { status = "Degraded", message = "Preflight failed: " .. describe(preflight) }
    end
    return { status = "Degraded", message = describe(stalled) }
  end

  local reconciling = condition(conditions, "Reconciling")
  if reconciling ~= nil and reconciling.status == "True" then
    local message = describe(reconciling)
    local run = status.currentRun
    if run ~= nil and run.progress ~= nil and run.progress.total ~= nil and run.progress.total > 0 then
      message = message .. " (" .. (run.progress.copied or 0) .. "/" .. run.progress.total .. " images copied"
      if run.progress.failed ~= nil and run.progress.failed > 0 then
        message = message .. ", " .. run.progress.failed .. " failed"
      end
      message = message .. ")"
    end
    return { status = "Progressing", message = message }
  end

  local pending = status.pendingChange
  if pending ~= nil then
    local what = "a change"
    if pending.disruptive == true then
      what = "a disruptive change (drains nodes)"
    end
    local message = "Waiting for approval of " .. what
    if pending.summary ~= nil and pending.summary ~= "" then
      message = message .. ": " .. pending.summary
    end
    if pending.hash ~= nil then
      message = message .. "; approve with spec.apply.approvedChange: " .. pending.hash
    end
    return { status = "Suspended", message = message }
  end
  if status.phase == "AwaitingApproval" then
    return { status = "Suspended", message = "A change waits for approval (status.pendingChange)" }
  end

  local pruned = condition(conditions, "Pruned")
  local plan = status.pendingPrune
  if plan ~= nil and pruned ~= nil and pruned.reason == "AwaitingPruneApproval" then
    local message = "Waiting for approval of a registry prune"
    if plan.summary ~= nil and plan.summary ~= "" then
      message = message .. ": " .. plan.summary
    end
    if plan.hash ~= nil then
      message = message .. "; approve with spec.prune.approvedPlan: " .. plan.hash
    end
    return { status = "Suspended", message = message }
  end

  local ready = condition(conditions, "Ready")
  if spec.suspend == true or status.phase == "Suspended" then
    local message = "Suspended by spec.suspend"
    if ready ~= nil then
      message = message .. " (" .. describe(ready) .. ")"
    end
    return { status = "Suspended", message = message }
  end

  if pruned ~= nil and (pruned.reason == "PruneFailed" or pruned.reason == "PruneRefused") then
    return { status = "Degraded", message = "Registry prune: " .. describe(pruned) }
  end

  if ready == nil then
    return { status = "Progressing", message = "Waiting for the Ready condition" }
  end
  if ready.status == "True" then
    return { status = "Healthy", message = describe(ready) }
  end
  if status.phase == "Failed" then
    return { status = "Degraded", message = describe(ready) }
  end
  return { status = "Progressing", message = describe(ready) }
end

return health(obj)
