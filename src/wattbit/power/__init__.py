"""wattbit.power"""
