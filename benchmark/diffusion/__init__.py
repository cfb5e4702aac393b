"""DDPM machinery (Ho et al. 2020): noise schedules, DDPM/DDIM samplers, the epsilon losses."""
