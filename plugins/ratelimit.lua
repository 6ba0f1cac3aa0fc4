-- ratelimit: messages per client address and per sender over a window.
--
-- plugin_config.ratelimit = {
--   per_ip = { count = 100, window = 3600 },      -- MAIL commands per IP
--   per_sender = { count = 500, window = 3600 },  -- per envelope sender
--   skip = { "127." },                            -- address prefixes exempt
-- }
-- Over the limit, MAIL gets 450 4.7.0 (the client may retry later).
-- Counts are fixed windows in ternd's key-value store.
local per_ip = config.per_ip
local per_sender = config.per_sender
local skip = config.skip or {}

local function over(kind, who, limit)
  if not limit then return false end
  local window = limit.window or 3600
  local slot = math.floor(os.time() / window)
  local n = tern.kv_incr(kind .. "|" .. who .. "|" .. slot, 1, window)
  return n > (limit.count or 100)
end

return {
  mail = function(tx, addr)
    local ip = tx.session.ip
    for _, p in ipairs(skip) do
      if ip:sub(1, #p) == p then return nil end
    end
    if over("ip", ip, per_ip) then
      tern.log("info", "rate limit for", ip)
      return "tempfail", "450 4.7.0 Too many messages from your address; try again later"
    end
    if addr ~= "" and over("sender", addr:lower(), per_sender) then
      tern.log("info", "rate limit for sender", addr)
      return "tempfail", "450 4.7.0 Too many messages from this sender; try again later"
    end
    return nil
  end,
}
