"""wattbit.plan"""
