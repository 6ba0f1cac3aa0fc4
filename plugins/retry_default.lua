-- retry_default: when to try a temporarily failed delivery again.
--
-- RFC 5321 4.5.4.1: the first retry no sooner than 30 minutes, growing
-- intervals, give up after 4-5 days. Settings (plugin_config.retry_default):
--   first        seconds before the first retry        (default 1800)
--   factor       growth per attempt                    (default 2)
--   max_interval longest wait between attempts         (default 14400)
--   give_up      age in seconds after which it bounces (default 432000)
--   max_attempts bounce after this many attempts       (default: none)
local first = config.first or 1800
local factor = config.factor or 2
local max_interval = config.max_interval or 4 * 3600
local give_up = config.give_up or 5 * 86400
local max_attempts = config.max_attempts

return {
  retry = function(m)
    if m.age >= give_up then return "bounce" end
    if max_attempts and m.attempts >= max_attempts then return "bounce" end
    local delay = first * factor ^ (math.max(m.attempts, 1) - 1)
    if delay > max_interval then delay = max_interval end
    -- the last attempt lands on the give-up time, not after it
    if m.age + delay > give_up then delay = give_up - m.age end
    return math.max(1, math.floor(delay))
  end,
}
