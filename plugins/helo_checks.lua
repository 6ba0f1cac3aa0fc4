-- helo_checks: refuse HELO/EHLO names that are malformed or claim to be us.
--
-- plugin_config.helo_checks = {
--   require_fqdn = true,     -- a name needs a dot (or is an address literal)
--   check_literal = true,    -- [1.2.3.4] must be the client's own address
--   trusted = { "127." },    -- address prefixes exempt from all checks
-- }
local require_fqdn = config.require_fqdn ~= false
local check_literal = config.check_literal ~= false
local trusted = config.trusted or { "127.", "::1" }

local function refuse(why)
  return "reject", "550 5.7.1 " .. why
end

return {
  helo = function(s, name)
    for _, p in ipairs(trusted) do
      if s.ip:sub(1, #p) == p then return nil end
    end
    local literal = name:match("^%[(.*)%]$")
    if literal then
      local ip = literal:gsub("^[Ii][Pp][Vv]6:", "")
      if check_literal and ip:lower() ~= s.ip:lower() then
        return refuse("HELO address literal is not your address")
      end
      return nil
    end
    if not name:match("^[%w][%w.-]*$") or name:find("..", 1, true)
        or name:sub(-1) == "-" then
      return refuse("HELO name is not a valid host name")
    end
    if require_fqdn and not name:find(".", 2, true) then
      return refuse("HELO name must be a fully qualified domain name")
    end
    local n = name:lower():gsub("%.$", "")
    if n == tern.hostname:lower() or tern.is_local(n) then
      return refuse("You are not me")
    end
    return nil
  end,
}
