// PM2 runs fba-backend under gunicorn (never the Flask dev server).
// `pm2 start ecosystem.config.js` from the repository root, after `make install`.
// The app reads .env itself (python-dotenv); variables set in the environment win over .env.
const path = require('path');

module.exports = {
  apps: [{
    name: 'fba-backend',
    cwd: __dirname,
    script: path.join(__dirname, '.venv/bin/gunicorn'),
    args: '-c gunicorn.conf.py app:create_app()',
    interpreter: 'none',
    // One gunicorn master; its workers (WEB_CONCURRENCY, default 1) and threads are gunicorn's.
    instances: 1,
    exec_mode: 'fork',
    autorestart: true,
    watch: false,
    max_memory_restart: '1G',
    // gunicorn's graceful_timeout is 30 s: let in-flight batches finish before PM2 kills it.
    kill_timeout: 35000,
    env: {
      NODE_ENV: 'production',
    },
  }, {
    // Batch job workers for JOB_BACKEND=redis (RQ): run as many as you like, on any host. With the
    // default JOB_BACKEND=sqlite the service's own workers run jobs: this one says so and exits 0,
    // which stop_exit_codes tells PM2 not to restart.
    name: 'fba-jobs-worker',
    cwd: __dirname,
    script: path.join(__dirname, '.venv/bin/flask'),
    args: 'jobs worker',
    interpreter: 'none',
    instances: 1,
    exec_mode: 'fork',
    autorestart: true,
    stop_exit_codes: [0],
    watch: false,
    max_memory_restart: '1G',
    // RQ's warm shutdown on SIGTERM finishes the part in hand (a step of 100 items, seconds).
    kill_timeout: 35000,
  }],
};
