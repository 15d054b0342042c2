"""wattbit.data"""
