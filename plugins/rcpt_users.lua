-- rcpt_users: accept only recipients listed in a users/aliases table.
--
-- plugin_config.rcpt_users = {
--   file = "/etc/tern/recipients",   -- the table (required)
--   delimiter = "+",                 -- user+tag@ is user@ (default "+")
-- }
-- The file, one entry per line (# comments, blank lines ignored):
--   alice                         a user at every local domain
--   bob@example.org               a user at one domain
--   postmaster: alice             alias (any local domain) -> targets
--   sales@example.org: alice, bob@example.org, carol@remote.example
--   @example.net: alice           catch-all for a domain
--   *: alice                      catch-all for every local domain
-- Targets without a domain are local to the recipient's domain. Unknown
-- local recipients get 550 5.1.1; other domains are left to the rest of
-- the chain (relay rules). Aliases are expanded at delivery (route hook).
local file = assert(config.file, "rcpt_users: plugin_config.rcpt_users.file is required")
local delim = config.delimiter or "+"

local users, aliases = {}, {}
for n, raw in ipairs(tern.readlines(file)) do
  local line = raw:gsub("#.*$", ""):match("^%s*(.-)%s*$")
  if line ~= "" then
    local key, targets = line:match("^([^:%s]+)%s*:%s*(.+)$")
    if key then
      local list = {}
      for t in targets:gmatch("[^,%s]+") do list[#list + 1] = t:lower() end
      aliases[key:lower()] = list
    elseif line:match("^[^%s:]+$") then
      users[line:lower()] = true
    else
      error(file .. ":" .. n .. ": cannot read '" .. raw .. "'")
    end
  end
end

local function split(addr)
  local l, d = addr:lower():match("^(.*)@([^@]+)$")
  if not l then return addr:lower(), "" end
  if delim ~= "" then
    local cut = l:find(delim, 1, true)
    if cut and cut > 1 then l = l:sub(1, cut - 1) end
  end
  return l, d
end

-- the alias list for local@domain, or nil
local function alias_of(l, d)
  return aliases[l .. "@" .. d] or aliases[l] or aliases["@" .. d] or aliases["*"]
end

local function known(l, d)
  return users[l .. "@" .. d] or users[l] or alias_of(l, d) ~= nil
end

return {
  rcpt = function(tx, addr)
    local l, d = split(addr)
    if not tern.is_local(d) then return nil end
    if known(l, d) then return "accept" end
    return "reject", "550 5.1.1 <" .. addr .. ">: Recipient address rejected: User unknown"
  end,

  route = function(rcpt, m)
    local l, d = split(rcpt)
    if not tern.is_local(d) then return nil end
    if users[l .. "@" .. d] or users[l] then return nil end  -- a user: default Maildir
    local list = alias_of(l, d)
    if not list then return nil end
    local out = {}
    for i, t in ipairs(list) do
      out[i] = t:find("@", 1, true) and t or (t .. "@" .. d)
    end
    return { expand = out }
  end,
}
