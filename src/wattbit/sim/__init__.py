"""wattbit.sim"""
