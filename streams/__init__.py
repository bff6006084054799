"""Python stream apps that kmf deploys (the demo's word count)."""
