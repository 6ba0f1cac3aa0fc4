-- greylist: triplet greylisting (client network, sender, recipient).
--
-- A new triplet is refused with 450 for `delay` seconds; a client that
-- retries after that (and within `window`) is let through and remembered
-- for `pass_ttl`. State lives in ternd's key-value store, so it survives
-- restarts. plugin_config.greylist = {
--   delay = 300,            -- seconds a new triplet must wait
--   window = 4 * 3600,      -- a retry later than this starts over
--   pass_ttl = 36 * 86400,  -- how long a passed triplet is remembered
--   skip = { "127.", "::1" },  -- client address prefixes never greylisted
-- }
-- Sessions on the submission role are never greylisted.
local delay = config.delay or 300
local window = config.window or 4 * 3600
local pass_ttl = config.pass_ttl or 36 * 86400
local skip = config.skip or {}

local function network(ip)
  local a, b, c = ip:match("^(%d+)%.(%d+)%.(%d+)%.%d+$")
  if a then return a .. "." .. b .. "." .. c end      -- IPv4 /24
  return ip:match("^([%x]*:[%x]*:[%x]*:[%x]*)") or ip  -- IPv6 /64
end

return {
  rcpt = function(tx, addr)
    local s = tx.session
    if s.role ~= "mx" then return nil end
    for _, p in ipairs(skip) do
      if s.ip:sub(1, #p) == p then return nil end
    end
    local key = network(s.ip) .. "|" .. tx.sender:lower() .. "|" .. addr:lower()
    if tern.kv_get("pass|" .. key) then return nil end
    local now = os.time()
    local first = tonumber(tern.kv_get("seen|" .. key))
    if first == nil then
      tern.kv_set("seen|" .. key, now, window)
      tern.log("info", "greylisted", s.ip, tx.sender, addr)
      return "tempfail", "450 4.7.1 Greylisted: please try again in " .. delay .. " seconds"
    end
    if now - first < delay then
      return "tempfail", "450 4.7.1 Greylisted: please try again in " ..
        (delay - (now - first)) .. " seconds"
    end
    tern.kv_set("pass|" .. key, 1, pass_ttl)
    return nil
  end,
}
