-- rspamd: asks rspamd (its HTTP protocol, POST /checkv2) about each
-- message received, with the envelope, and acts on its action. The
-- request waits on the event loop; other sessions go on meanwhile.
-- Needs plugin_http_allow = { "127.0.0.1:11333" } (the url's host:port).
--
-- plugin_config.rspamd = {
--   url = "http://127.0.0.1:11333/checkv2",
--   timeout = 15,          -- seconds
--   fail_open = false,     -- rspamd down or failing: true accepts the
--                          -- message unchecked; false answers 451
--   junk = "Junk",         -- "add header": also file into this folder
--                          -- (false: the header only)
--   submission = false,    -- also check mail submitted by users
--   symbols = false,       -- add X-Spam-Symbols with rspamd's symbols
-- }
-- Actions: reject -> 554 5.7.1; soft reject -> 451 4.7.1; greylist ->
-- 451 4.7.1; add header -> X-Spam: Yes (and the junk folder); rewrite
-- subject -> the Subject rspamd gives; no action -> accepted. Every
-- message checked gets X-Spam-Action, X-Spam-Score and X-Spam-Status;
-- rspamd's own milter headers are applied as it says.
local url = config.url or "http://127.0.0.1:11333/checkv2"
local timeout = config.timeout or 15
local fail_open = config.fail_open == true
local junk = config.junk
if junk == nil then junk = "Junk" end
local submission = config.submission == true
local want_symbols = config.symbols == true

local function unavailable(why)
  tern.log("warn", "rspamd: " .. why .. (fail_open and "; accepted unchecked" or ""))
  if fail_open then return end
  return "tempfail", "451 4.7.1 Spam filter unavailable; try again later"
end

local function one_line(v)
  return (tostring(v):gsub("[\r\n]+", " "))
end

return {
  data = function(tx, msg)
    local s = tx.session
    if not submission and (s.role == "submission" or s.role == "submissions") then
      return
    end
    local headers = {
      IP = s.ip, From = tx.sender, Rcpt = tx.rcpts,
      ["MTA-Name"] = tern.hostname,
    }
    if s.helo then headers.Helo = s.helo end
    if s.user then headers.User = s.user end
    local r, err = tern.http.request{
      url = url, method = "POST", headers = headers, body = msg:text(),
      timeout = timeout,
    }
    if not r then return unavailable(err) end
    if r.status ~= 200 then return unavailable("HTTP status " .. r.status) end
    local res, jerr = tern.json.decode(r.body)
    if type(res) ~= "table" or not res.action then
      return unavailable("unreadable answer: " .. (jerr or "no action"))
    end
    local score = tonumber(res.score) or 0
    local required = tonumber(res.required_score) or 0
    local action = res.action
    tern.log("info", string.format("rspamd: action=%s score=%.2f/%.2f from=%s",
      action, score, required, tx.sender))
    if action == "reject" then
      local text = res.messages and res.messages.smtp_message
      return "reject", "554 5.7.1 " .. one_line(text or "Spam message rejected")
    elseif action == "soft reject" then
      return "tempfail", "451 4.7.1 Try again later"
    elseif action == "greylist" then
      return "tempfail", "451 4.7.1 Greylisted, please try again later"
    end
    -- what rspamd's milter block asks (removals first)
    local m = res.milter
    if type(m) == "table" then
      for name in pairs(m.remove_headers or {}) do msg:remove_header(name) end
      for name, v in pairs(m.add_headers or {}) do
        if type(v) == "table" then v = v.value end
        if type(v) == "string" then msg:add_header(name, one_line(v)) end
      end
    end
    local spam = action == "add header" or action == "rewrite subject"
    if action == "rewrite subject" and type(res.subject) == "string" then
      msg:remove_header("Subject")
      msg:add_header("Subject", one_line(res.subject))
    end
    if spam then
      msg:add_header("X-Spam", "Yes")
      if junk then
        for _, rc in ipairs(tx.rcpts) do tx:set_folder(rc, junk) end
      end
    end
    if want_symbols and type(res.symbols) == "table" then
      local names = {}
      for name in pairs(res.symbols) do names[#names + 1] = name end
      table.sort(names)
      msg:add_header("X-Spam-Symbols", table.concat(names, ", "))
    end
    msg:add_header("X-Spam-Status", string.format("%s, score=%.2f required=%.2f",
      spam and "Yes" or "No", score, required))
    msg:add_header("X-Spam-Score", string.format("%.2f", score))
    msg:add_header("X-Spam-Action", action)
  end,
}
