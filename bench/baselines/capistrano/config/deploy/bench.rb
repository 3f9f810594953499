# The VPS of `npm run bench` (the local VPS): SSH settings from the environment.
#   CAP_HOST CAP_SSH_PORT CAP_USER   the login      CAP_KEY  private key file
#   CAP_KNOWN_HOSTS                  known_hosts with the VPS's key (it is verified)
def cap_env(name)
  ENV.fetch(name) { abort "capistrano baseline: #{name} is not set" }
end

server cap_env("CAP_HOST"), user: cap_env("CAP_USER"), port: Integer(cap_env("CAP_SSH_PORT")), roles: %w[app]
set :ssh_options, {
  keys: [cap_env("CAP_KEY")],
  keys_only: true,
  auth_methods: %w[publickey],
  user_known_hosts_file: cap_env("CAP_KNOWN_HOSTS"),
  global_known_hosts_file: "/dev/null",
  verify_host_key: :always,
}
