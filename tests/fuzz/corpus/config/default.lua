listen = {
  { addr = "127.0.0.1:2525", role = "mx" },
  { addr = "127.0.0.1:2587", role = "submission" },
}
trusted_networks = { "127.0.0.0/8", "::1/128" }
plugins = { "retry_default" }
