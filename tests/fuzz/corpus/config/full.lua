hostname = "mx.example.org"
data_dir = "/tmp/tern-fuzz-none"
listen = {
  { addr = "127.0.0.1:25", role = "mx" },
  { addr = "[::1]:587", role = "submission", tls = "starttls" },
  { addr = "127.0.0.1:465", role = "submissions" },
}
domains = { "example.org", "example.net" }
trusted_networks = { "10.0.0.0/8" }
limits = { max_message_size = 1048576, max_recipients = 10, command_timeout = 30 }
smtp_client = { port = 2525, max_per_destination = 2, tls = "dane",
  mta_sts = true, mta_sts_port = 8443 }
dns_timeout = 5
delay_warning = 3600
hook_budget_ms = 50
plugin_memory = 1048576
io_threads = 2
recipient_delimiter = "-"
resolver = "127.0.0.1:53"
dnssec = true
dnssec_trust_anchor = "/usr/share/dns/root.key"
tls_reports = false
plugins = { "retry_default", "rcpt_users" }
