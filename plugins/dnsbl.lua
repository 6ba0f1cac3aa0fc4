-- dnsbl: asks DNS blocklists (RFC 5782) about the client's address,
-- without holding other sessions while the answers come
-- (tern.dnsbl waits on the event loop).
--
-- plugin_config.dnsbl = {
--   zones = { "zen.example.org",                       -- weight 1
--             { zone = "bl.example.net", weight = 2,   -- or a table:
--               codes = { "127.0.0.2" } } },           -- only these answers
--   threshold = 1,       -- a score this high is listed
--   action = "reject",   -- "reject" (554 5.7.1 at RCPT) or "score"
--                        -- (an X-Tern-DNSBL header on the message)
--   skip = { "10.", "192.168." },      -- client address prefixes not asked
--   allow_rcpt = { "postmaster@*" },   -- recipients a listed client may
--                                      -- still reach
--   cache = 300,         -- seconds an address's score is kept
--   on_error = "ignore", -- a list that cannot answer: "ignore" or "tempfail"
-- }
-- Submission sessions are never checked.
local zones = {}
for _, z in ipairs(config.zones or {}) do
  if type(z) == "string" then z = { zone = z } end
  local codes
  if z.codes then
    codes = {}
    for _, c in ipairs(z.codes) do codes[c] = true end
  end
  zones[#zones + 1] = { zone = z.zone, weight = z.weight or 1, codes = codes }
end
local threshold = config.threshold or 1
local action = config.action or "reject"
local skip = config.skip or {}
local allow_rcpt = config.allow_rcpt or { "postmaster@*" }
local ttl = config.cache or 300
local on_error = config.on_error or "ignore"
local cache = {}   -- ip -> { score =, listed =, until = }

local function skipped(s)
  if s.role == "submission" or s.role == "submissions" then return true end
  for _, p in ipairs(skip) do
    if s.ip:sub(1, #p) == p then return true end
  end
  return false
end

-- The client's score and the zones that list it, or nil and why.
local function score_of(ip)
  local now = tern.now()
  local c = cache[ip]
  if c and c["until"] > now then return c.score, c.listed end
  local score, listed = 0, {}
  for _, z in ipairs(zones) do
    local hit, codes = tern.dnsbl(ip, z.zone)
    if hit == nil then
      tern.log("warn", "dnsbl: " .. z.zone .. ": " .. codes)
      if on_error == "tempfail" then return nil, z.zone end
    elseif hit then
      local counts = z.codes == nil
      for _, code in ipairs(codes) do
        if z.codes and z.codes[code] then counts = true end
      end
      if counts then
        score = score + z.weight
        listed[#listed + 1] = z.zone
      end
    end
  end
  if #listed > 0 then
    tern.log("info", "dnsbl: " .. ip .. " listed by " ..
      table.concat(listed, ",") .. " score=" .. score)
  end
  cache[ip] = { score = score, listed = listed, ["until"] = now + ttl }
  return score, listed
end

local hooks = {}

hooks.rcpt = function(tx, addr)
  local s = tx.session
  if skipped(s) then return end
  local score, listed = score_of(s.ip)
  if score == nil then
    return "tempfail", "451 4.7.1 Cannot check " .. listed .. " now; try again later"
  end
  if action ~= "reject" or score < threshold then return end
  for _, g in ipairs(allow_rcpt) do
    if tern.glob(g, addr) then return end
  end
  return "reject", "554 5.7.1 Service unavailable; client [" .. s.ip ..
    "] blocked using " .. table.concat(listed, ",")
end

if action == "score" then
  hooks.data = function(tx, msg)
    local s = tx.session
    if skipped(s) then return end
    local score, listed = score_of(s.ip)
    if score == nil then return end
    msg:add_header("X-Tern-DNSBL", "score=" .. score ..
      (#listed > 0 and " listed=" .. table.concat(listed, ",") or ""))
  end
end

return hooks
