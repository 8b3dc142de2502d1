"""Where training runs execute. An executor has `slots` (how many runs it takes at once) and
`execute(job)`, which runs one `vae.job_state.Job` to its end, writing its events and outcome into it.

- `in_process.InProcessExecutor`: worker threads of the server process (the default).
- `ray_cluster.RayExecutor`: one Ray actor per run on a cluster (needs `ray`, imported only there).
"""
