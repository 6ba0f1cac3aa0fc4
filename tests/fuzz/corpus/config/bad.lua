listen = { { addr = "nowhere", role = "mx" } }
limits = { max_message_size = -1 }
