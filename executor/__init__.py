"""The kmf Mesos executor: supervises one broker or stream-app process inside its sandbox."""
