# Capistrano baseline for `npm run bench`: the same app, VPS and PM2 settings as ours, the
# Capistrano way: releases/<timestamp> from a git repository, shared/ (logs, .env), current ->
# the release, keep 5. `npm ci --omit=dev` and `prisma migrate deploy` run after deploy:updated
# (in the new release, before the switch), `pm2 startOrReload` after deploy:published (also on
# deploy:rollback). No health check: that is not part of Capistrano's flow.
#
# Every setting comes from the environment (config/deploy/bench.rb reads the SSH ones):
#   CAP_REPO      git URL of the built app (dist/ committed), readable by the VPS user
#   CAP_ROOT      deploy_to on the VPS        CAP_APP   PM2 app name     CAP_APP_PORT  the app's PORT
#   CAP_LOG       Capistrano's log file (default: a temp file, so nothing is written here)
lock "~> 3.17"

def bench_env(name)
  ENV.fetch(name) { abort "capistrano baseline: #{name} is not set" }
end

set :application, bench_env("CAP_APP")
set :repo_url, bench_env("CAP_REPO")
set :branch, "main"
set :deploy_to, bench_env("CAP_ROOT")
set :keep_releases, 5
set :linked_files, [".env"]
set :linked_dirs, ["logs"]
set :app_port, bench_env("CAP_APP_PORT")
set :format_options, log_file: ENV.fetch("CAP_LOG") { File.join(Dir.tmpdir, "capistrano-bench.log") }

namespace :bench do
  desc "Write shared/.env (once) and shared/ecosystem.config.js, as a user would by hand before the first deploy"
  task :shared_files do
    on roles(:app) do
      execute :mkdir, "-p", shared_path.join("logs"), shared_path.join("data")
      unless test("[ -f #{shared_path.join('.env')} ]")
        upload! StringIO.new(%(DATABASE_URL="file:#{shared_path.join('data', 'app.db')}"\n)), shared_path.join(".env")
      end
      upload! StringIO.new(<<~JS), shared_path.join("ecosystem.config.js")
        const fs = require("fs");
        const path = require("path");
        const { parseEnv } = require("util");
        const current = #{current_path.to_s.to_json};
        const read = (file) => { try { return fs.readFileSync(file, "utf8"); } catch (e) { return ""; } };
        module.exports = {
          apps: [{
            name: #{fetch(:application).to_json},
            script: "dist/server.js",
            cwd: current,
            exec_mode: "cluster",
            instances: 2,
            env: Object.assign(parseEnv(read(path.join(__dirname, ".env"))), {
              NODE_ENV: "production",
              PORT: #{fetch(:app_port).to_s.to_json},
              RELEASE_ID: read(path.join(current, "REVISION")).trim().slice(0, 12),
            }),
            out_file: #{shared_path.join('logs', 'out.log').to_s.to_json},
            error_file: #{shared_path.join('logs', 'err.log').to_s.to_json},
            merge_logs: true,
            time: true,
            wait_ready: true,
            listen_timeout: 15000,
            kill_timeout: 10000,
          }],
        };
      JS
    end
  end
end
before "deploy:check:linked_files", "bench:shared_files"

namespace :app do
  task :install do
    on roles(:app) do
      within release_path do
        execute :npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"
      end
    end
  end

  task :migrate do
    on roles(:app) do
      within release_path do
        execute :npx, "--no-install", "prisma", "migrate", "deploy"
      end
    end
  end

  task :reload do
    on roles(:app) do
      within current_path do
        execute :pm2, "startOrReload", shared_path.join("ecosystem.config.js"), "--update-env"
        execute :pm2, "save"
      end
    end
  end
end
after "deploy:updated", "app:install"
after "app:install", "app:migrate"
after "deploy:published", "app:reload"
