-- dmarc_policy: applies the DMARC policy (RFC 7489 6.6.4) of mail that
-- fails DMARC, as ternd found it (tx.auth.dmarc, received on mx).
--
-- plugin_config.dmarc_policy = {
--   reject = true,         -- p=reject: refuse (550 5.7.1); false: Junk
--   quarantine = "Junk",   -- p=quarantine (and reject = false): this folder
--   skip = { "lists.example.org" },  -- From: domains whose policy is not applied
-- }
-- pct= is honoured: a message outside the percentage gets the next
-- milder treatment (reject -> quarantine -> none, RFC 7489 6.6.4).
-- p=none only leaves the verdict in Authentication-Results.
local do_reject = config.reject ~= false
local folder = config.quarantine or "Junk"
local skip = {}
for _, d in ipairs(config.skip or {}) do skip[d:lower()] = true end

local function milder(p)
  if p == "reject" then return "quarantine" end
  return "none"
end

return {
  data = function(tx, msg)
    local d = tx.auth and tx.auth.dmarc
    if not d or d.result ~= "fail" or skip[d.domain] then return end
    local p = d.policy
    if d.pct < 100 and math.random(100) > d.pct then p = milder(p) end
    if p == "reject" and do_reject then
      tern.log("info", "dmarc_policy: refused, From: " .. d.domain)
      return "reject", "550 5.7.1 Refused by the DMARC policy of " .. d.domain
    end
    if p == "reject" or p == "quarantine" then
      tern.log("info", "dmarc_policy: to " .. folder .. ", From: " .. d.domain)
      for _, r in ipairs(tx.rcpts) do tx:set_folder(r, folder) end
    end
  end,
}
