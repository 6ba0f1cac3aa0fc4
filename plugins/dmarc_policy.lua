-- dmarc_policy: applies the DMARC policy (RFC 7489 6.6.4) of mail that
-- fails DMARC, as ternd found it (tx.auth.dmarc, received on mx).
--
-- plugin_config.dmarc_policy = {
--   reject = true,         -- p=reject: refuse (550 5.7.1); false: Junk
--   quarantine = "Junk",   -- p=quarantine (and reject = false): this folder
--   skip = { "lists.example.org" },  -- From: domains whose policy is not applied
--   arc_trusted = { "forwarder.example" },  -- ARC sealers whose word counts
-- }
-- With arc_trusted, mail whose ARC chain passes (tx.auth.arc) is let
-- through when a sealer trusted here, reached from the newest set down
-- through trusted sealers only, recorded dmarc=pass when it got the
-- message (RFC 7489 7.2 "local policy": a forwarder or list broke DMARC).
-- pct= is honoured: a message outside the percentage gets the next
-- milder treatment (reject -> quarantine -> none, RFC 7489 6.6.4).
-- p=none only leaves the verdict in Authentication-Results.
local do_reject = config.reject ~= false
local folder = config.quarantine or "Junk"
local skip = {}
for _, d in ipairs(config.skip or {}) do skip[d:lower()] = true end
local trusted = {}
for _, d in ipairs(config.arc_trusted or {}) do trusted[d:lower()] = true end

-- The set of a trusted sealer, newest first through trusted ones only,
-- that saw DMARC pass; nil if none.
local function arc_vouches(arc)
  if not arc or arc.result ~= "pass" then return nil end
  for i = #arc.sets, 1, -1 do
    local s = arc.sets[i]
    if not trusted[s.domain] then return nil end
    if s.results:lower():match("[;%s]dmarc%s*=%s*pass") then return s end
  end
  return nil
end

local function milder(p)
  if p == "reject" then return "quarantine" end
  return "none"
end

return {
  data = function(tx, msg)
    local d = tx.auth and tx.auth.dmarc
    if not d or d.result ~= "fail" or skip[d.domain] then return end
    local v = arc_vouches(tx.auth.arc)
    if v then
      tern.log("info", "dmarc_policy: DMARC fail of " .. d.domain ..
        " let through: ARC i=" .. v.i .. " by " .. v.domain .. " saw a pass")
      return
    end
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
