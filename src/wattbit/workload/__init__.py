"""wattbit.workload"""
