-- route_domains: a per-domain routing table.
--
-- plugin_config.route_domains = { routes = {
--   ["example.org"]  = { maildir = "/srv/mail/example.org" }, -- <root>/<user>
--   ["lists.example"] = { relay = "10.0.0.5:25" },           -- a relay host
--   ["other.example"] = { mx = "mail.other.example" },       -- MX of a domain
--   ["old.example"]  = "reject",                             -- 550 5.1.2
--   ["*"] = { relay = "smarthost.example:587" },             -- everything else
-- } }
-- A domain not in the table (and no "*") keeps the default route.
local routes = config.routes or {}
local delim = config.delimiter or "+"

local function mailbox(localpart)
  local l = localpart:lower()
  if delim ~= "" then
    local cut = l:find(delim, 1, true)
    if cut and cut > 1 then l = l:sub(1, cut - 1) end
  end
  -- a single safe path component, as ternd's own rule
  if not l:match("^[%w][%w._=-]*$") or l:find("..", 1, true) or l:sub(-1) == "." then
    return nil
  end
  return l
end

return {
  route = function(rcpt, m)
    local domain = m.domain:lower()
    local r = routes[domain] or routes["*"]
    if r == nil then return nil end
    if r == "reject" then
      return "reject", "550 5.1.2 <" .. rcpt .. ">: domain not accepted here"
    end
    if r.maildir then
      local l = mailbox(rcpt:match("^(.*)@") or rcpt)
      if not l then return "reject", "553 5.1.3 mailbox name not allowed" end
      return { maildir = r.maildir .. "/" .. l, folder = r.folder }
    end
    if r.relay then return { relay = r.relay } end
    if r.mx then return { mx = r.mx } end
    error("route_domains: route for " .. domain .. " needs maildir, relay, mx or \"reject\"")
  end,
}
