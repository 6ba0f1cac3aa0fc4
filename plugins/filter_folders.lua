-- filter_folders: sieve-like header rules, written as Lua tables.
--
-- plugin_config.filter_folders = { rules = {
--   { header = "List-Id", contains = "tern-dev", folder = "Lists.tern" },
--   { header = "Subject", glob = "*[list]*", folder = "Lists" },
--   { header = "X-Spam-Flag", equals = "YES", folder = "Junk" },
--   { header = "Subject", contains = "casino", reject = "550 5.7.1 No thanks" },
--   { header = "From", glob = "*@example.com", add_header = { "X-Filed", "example" } },
--   { header = "To", contains = "boss", rcpt = "alice@*", folder = "Important" },
-- } }
-- Matches are case-insensitive: contains (substring), equals, glob (* and
-- ?). A rule may limit itself to recipients with rcpt = "<glob>". All
-- rules are tried in order; the first folder for a recipient wins; a
-- reject ends the evaluation.
local rules = config.rules or {}

local function matches(rule, value)
  if value == nil then return false end
  local v = value:lower()
  if rule.equals then return v == tostring(rule.equals):lower() end
  if rule.contains then return v:find(tostring(rule.contains):lower(), 1, true) ~= nil end
  if rule.glob then return tern.glob(rule.glob, value) end
  return true  -- the header is present
end

for i, rule in ipairs(rules) do
  assert(type(rule.header) == "string", "filter_folders: rule " .. i .. " needs a header")
  assert(rule.folder or rule.reject or rule.add_header,
    "filter_folders: rule " .. i .. " needs folder, reject or add_header")
end

return {
  data = function(tx, msg)
    local filed = {}
    for _, rule in ipairs(rules) do
      if matches(rule, msg:header(rule.header)) then
        if rule.reject then
          return "reject", rule.reject
        end
        if rule.add_header then
          msg:add_header(rule.add_header[1], rule.add_header[2])
        end
        if rule.folder then
          for _, r in ipairs(tx.rcpts) do
            if not filed[r] and (rule.rcpt == nil or tern.glob(rule.rcpt, r)) then
              tx:set_folder(r, rule.folder)
              filed[r] = true
            end
          end
        end
      end
    end
    return nil
  end,
}
