-- spf_policy: acts on the SPF result (RFC 7208 8) of mail received on
-- mx, as ternd found it (tx.auth.spf: the MAIL FROM domain, or the HELO
-- name for <>).
--
-- plugin_config.spf_policy = {
--   fail = "reject",       -- "reject" (550 5.7.23), "junk" or "none"
--   softfail = "none",     -- "junk" or "none" (RFC 7208 8.5: do not reject)
--   temperror = "none",    -- "tempfail" (451 4.7.24) or "none"
--   permerror = "none",    -- "reject" (550 5.7.24), "junk" or "none"
--   folder = "Junk",       -- where "junk" files a message
--   unless_dmarc_pass = true,  -- DMARC passed (aligned DKIM): no action,
--                              -- so forwarded mail that is signed gets in
--   skip = { "lists.example.org" },  -- domains whose results are ignored
-- }
local act = {
  fail = config.fail or "reject",
  softfail = config.softfail or "none",
  temperror = config.temperror or "none",
  permerror = config.permerror or "none",
}
local folder = config.folder or "Junk"
local unless_dmarc = config.unless_dmarc_pass ~= false
local skip = {}
for _, d in ipairs(config.skip or {}) do skip[d:lower()] = true end

return {
  data = function(tx, msg)
    local spf = tx.auth and tx.auth.spf
    if not spf or skip[spf.domain] then return end
    local a = act[spf.result]
    if a == nil or a == "none" then return end
    local dmarc = tx.auth.dmarc
    if unless_dmarc and dmarc and dmarc.result == "pass" then return end
    local why = "SPF " .. spf.result .. " for " .. spf.domain
    if a == "reject" then
      tern.log("info", "spf_policy: refused, " .. why)
      if spf.result == "fail" then
        return "reject", "550 5.7.23 Message rejected: " .. why
      end
      return "reject", "550 5.7.24 Message rejected: " .. why
    elseif a == "tempfail" then
      return "tempfail", "451 4.7.24 Cannot check SPF for " .. spf.domain .. " now"
    elseif a == "junk" then
      tern.log("info", "spf_policy: to " .. folder .. ", " .. why)
      for _, r in ipairs(tx.rcpts) do tx:set_folder(r, folder) end
    end
  end,
}
